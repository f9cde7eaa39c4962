import type { FastifyPluginAsyncTypebox as FastifyPluginAsync } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { hostView } from '../../../inventory/index.js';
import { normalizeMac } from '../../../model/identifiers.js';
import { HostApprove, HostCreate, HostState, HostUpdate, HostView, EventView } from '../../../model/schemas.js';
import { ConflictError } from '../../../model/errors.js';
import type { AppDeps } from '../../app.js';
import { errors, MacParams } from './common.js';

export const hostRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const hosts = deps.inventory.hosts;
  const actor = (ip: string) => ({ stage: 'api', sourceIp: ip });
  /** Lets storage provision or withdraw the host's disk, then answers with the host as it is now. */
  const settled = async (mac: string) => {
    await deps.storage?.afterChange(mac);
    return hosts.get(mac);
  };

  app.get(
    '/hosts',
    {
      schema: {
        tags: ['hosts'],
        summary: 'List hosts',
        querystring: Type.Object({ state: Type.Optional(HostState), profile: Type.Optional(Type.String({ maxLength: 63 })) }),
        response: { 200: Type.Object({ items: Type.Array(HostView) }), ...errors },
      },
    },
    async (req) => ({ items: hosts.list(req.query).map(hostView) }),
  );

  app.post(
    '/hosts',
    { schema: { tags: ['hosts'], summary: 'Register a host', body: HostCreate, response: { 201: HostView, ...errors } } },
    async (req, reply) => {
      const host = hosts.create(req.body, actor(req.ip));
      return reply.status(201).send(hostView(await settled(host.mac)));
    },
  );

  app.get(
    '/hosts/:mac',
    { schema: { tags: ['hosts'], summary: 'Show a host', params: MacParams, response: { 200: HostView, ...errors } } },
    async (req) => hostView(hosts.get(req.params.mac)),
  );

  app.patch(
    '/hosts/:mac',
    { schema: { tags: ['hosts'], summary: 'Change a host', params: MacParams, body: HostUpdate, response: { 200: HostView, ...errors } } },
    async (req) => hostView(await settled(hosts.update(req.params.mac, req.body, actor(req.ip)).mac)),
  );

  app.delete(
    '/hosts/:mac',
    {
      schema: {
        tags: ['hosts'],
        summary: 'Remove a host (its events stay; its disk data too unless deleteDisk=true)',
        params: MacParams,
        querystring: Type.Object({
          deleteDisk: Type.Optional(Type.Boolean({ default: false, description: 'also delete the disk hiveboot provisioned for it' })),
        }),
        response: { 204: Type.Null(), ...errors },
      },
    },
    async (req, reply) => {
      const mac = hosts.get(req.params.mac).mac;
      hosts.remove(mac, actor(req.ip));
      await deps.storage?.release(mac, { deleteData: req.query.deleteDisk === true });
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/hosts/:mac/approve',
    {
      schema: {
        tags: ['hosts'],
        summary: 'Approve a discovered host (host name defaults to node-<mac>, profile to the default profile)',
        params: MacParams,
        body: Type.Optional(HostApprove),
        response: { 200: HostView, ...errors },
      },
      // A bare "POST .../approve" (no body, no content type) means "all defaults": validate it as {}.
      preValidation: async (req) => {
        if (req.body === undefined) req.body = {};
      },
    },
    async (req) =>
      hostView(await settled(hosts.approve(req.params.mac, { ...(req.body ?? {}), defaultProfile: deps.defaultProfile }, actor(req.ip)).mac)),
  );

  app.post(
    '/hosts/:mac/disk/rotate-chap',
    {
      schema: {
        tags: ['hosts'],
        summary: 'Give the host a new CHAP secret (its built-in target takes it at once; the host gets it with its next boot script)',
        params: MacParams,
        response: { 200: HostView, ...errors },
      },
    },
    async (req) => {
      if (!deps.storage) throw new ConflictError('disk: hiveboot does not manage disks here (storage.backend)', 'disk');
      return hostView(await deps.storage.rotateChap(hosts.get(req.params.mac).mac));
    },
  );

  app.get(
    '/hosts/:mac/events',
    {
      schema: {
        tags: ['hosts', 'events'],
        summary: "A machine's boot timeline, newest first",
        params: MacParams,
        querystring: Type.Object({
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })),
          before: Type.Optional(Type.Integer({ minimum: 1, description: 'cursor: nextBefore of the previous page' })),
        }),
        response: { 200: Type.Object({ items: Type.Array(EventView), nextBefore: Type.Union([Type.Integer(), Type.Null()]) }), ...errors },
      },
    },
    // Events are kept for machines that were never registered or have been removed, so no 404 here.
    async (req) => deps.inventory.events.forMac(normalizeMac(req.params.mac), req.query),
  );
};
