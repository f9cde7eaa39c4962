import type { FastifyPluginAsyncTypebox as FastifyPluginAsync } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { DiscoverInput } from '../../../model/schemas.js';
import type { AppDeps } from '../../app.js';
import { HttpError } from '../../errors.js';
import { errors } from './common.js';

/**
 * POST /v1/discover: a machine reports itself (iPXE's `params` sends a form; scripts may send JSON).
 * No token — firmware has none — so it only ever creates `discovered` hosts, capped in number, and
 * never reveals anything.
 */
export const discoverRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 16 * 1024 }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });

  app.post(
    '/discover',
    {
      schema: {
        tags: ['boot'],
        security: [],
        summary: 'A machine reports itself: creates a discovered host or updates its facts',
        body: DiscoverInput,
        response: { 202: Type.Object({ mac: Type.String(), state: Type.String() }), ...errors },
      },
    },
    async (req, reply) => {
      const { mac, ...facts } = req.body;
      const host = deps.boot.discover(mac, facts, req.ip);
      if (!host) throw new HttpError(503, 'discovery is full (boot.maxDiscovered); approve or remove discovered hosts');
      return reply.status(202).send({ mac: host.mac, state: host.state });
    },
  );
};
