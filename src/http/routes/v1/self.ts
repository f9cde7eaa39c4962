import { readFileSync, statSync } from 'node:fs';
import type { FastifyPluginAsyncTypebox as FastifyPluginAsync } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { stringify } from 'yaml';
import type { Host } from '../../../inventory/hosts.js';
import { BUILTIN_SOURCE } from '../../../storage/builtin.js';
import type { AppDeps } from '../../app.js';
import { HttpError } from '../../errors.js';
import { errors } from './common.js';

/** Where the first-boot agent writes the drop-in (K3s reads every file of config.yaml.d/). */
export const K3S_DROP_IN_PATH = '/etc/rancher/k3s/config.yaml.d/50-hiveboot.yaml';

export const SelfConfig = Type.Object({
  mac: Type.String(),
  hostname: Type.String(),
  nodeName: Type.String(),
  labels: Type.Record(Type.String(), Type.String()),
  k3s: Type.Object({ serverUrl: Type.Union([Type.String(), Type.Null()]), hasToken: Type.Boolean() }),
  dropIn: Type.Object({ path: Type.String(), content: Type.String() }),
});

export const SelfEvent = Type.Object(
  {
    stage: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,31}$', description: 'e.g. os-up, config-applied, k3s-started' }),
    message: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);

/**
 * /v1/hosts/self/*: a booted host asks for its own configuration and reports its stages. No token
 * (the image carries none): the caller is identified by its address, which must be the one the host
 * booted from (DHCP / iPXE) and, when hiveboot serves its disk, the one logged in to that disk's target
 * right now. Anyone else gets 403 and the attempt lands on the timeline of the host it claimed to be.
 */
export const selfRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const identify = (req: FastifyRequest, what: string): Host => {
    const ip = req.ip.replace(/^::ffff:/, '');
    const host = deps.inventory.hosts.findByLastIp(ip);
    const refuse = (why: string, mac?: string): never => {
      if (mac) deps.inventory.events.record({ mac, stage: 'metadata', sourceIp: ip, message: `${what} refused`, reason: why });
      req.log.warn({ ip, why }, `${what} refused`);
      throw new HttpError(403, `${what}: ${why}`);
    };
    if (!host) return refuse(`no host booted from ${ip}`);
    if (host.state !== 'ready' || !host.hostname) return refuse(`host ${host.mac} is ${host.state}`, host.mac);
    if (host.disk?.source === BUILTIN_SOURCE && deps.storage && !deps.storage.loggedInFrom(host.mac, ip)) {
      return refuse(`${ip} is not logged in to ${host.mac}'s disk`, host.mac);
    }
    return host;
  };

  const k3sToken = (): string | undefined => {
    const file = deps.k3s?.tokenFile;
    if (!file) return undefined;
    // A token others can read is already leaked: refuse to hand it out rather than spread it further.
    if ((statSync(file).mode & 0o077) !== 0) throw new HttpError(500, `k3s.tokenFile ${file} must be mode 0600`);
    return readFileSync(file, 'utf8').trim();
  };

  const render = (host: Host) => {
    const profile = host.profile ? deps.inventory.profiles.find(host.profile) : undefined;
    const labels = { ...(profile?.k3sLabels ?? {}), ...host.labels };
    const token = k3sToken();
    const nodeName = host.hostname!;
    const dropIn: Record<string, unknown> = {
      ...(deps.k3s?.serverUrl ? { server: deps.k3s.serverUrl } : {}),
      ...(token ? { token } : {}),
      'node-name': nodeName,
      ...(Object.keys(labels).length ? { 'node-label': Object.entries(labels).map(([k, v]) => `${k}=${v}`) } : {}),
    };
    return {
      mac: host.mac,
      hostname: nodeName,
      nodeName,
      labels,
      k3s: { serverUrl: deps.k3s?.serverUrl ?? null, hasToken: token !== undefined },
      dropIn: { path: K3S_DROP_IN_PATH, content: `# written by hiveboot for ${host.mac}\n${stringify(dropIn)}` },
    };
  };

  app.get(
    '/hosts/self/config',
    {
      schema: {
        tags: ['boot'],
        security: [],
        summary: "The calling host's own configuration (hostname, K3s drop-in); only for the host that booted from the caller's address",
        response: { 200: SelfConfig, ...errors },
      },
    },
    async (req) => {
      const host = identify(req, 'config');
      const config = render(host);
      deps.inventory.events.record({ mac: host.mac, stage: 'config-fetched', sourceIp: req.ip, message: 'configuration fetched by the host' });
      return config;
    },
  );

  app.get(
    '/hosts/self/k3s.yaml',
    { schema: { tags: ['boot'], security: [], summary: 'The K3s config drop-in of the calling host', produces: ['text/yaml'] } },
    async (req, reply) => {
      const host = identify(req, 'k3s config');
      deps.inventory.events.record({ mac: host.mac, stage: 'config-fetched', sourceIp: req.ip, message: 'K3s drop-in fetched by the host' });
      return reply.type('text/yaml; charset=utf-8').send(render(host).dropIn.content);
    },
  );

  app.post(
    '/hosts/self/events',
    {
      schema: {
        tags: ['boot'],
        security: [],
        summary: 'The calling host reports a stage of its boot (os-up, config-applied, k3s-started...)',
        body: SelfEvent,
        response: { 204: Type.Null(), ...errors },
      },
    },
    async (req, reply) => {
      const host = identify(req, 'event');
      deps.inventory.events.record({ mac: host.mac, stage: req.body.stage, sourceIp: req.ip, message: req.body.message ?? req.body.stage });
      return reply.status(204).send(null);
    },
  );
};
