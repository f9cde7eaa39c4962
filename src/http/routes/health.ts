import type { FastifyPluginAsyncTypebox as FastifyPluginAsync } from '@fastify/type-provider-typebox';
import type { AppDeps } from '../app.js';

/** Unauthenticated: liveness for systemd/monitoring, and Prometheus metrics. */
export const healthRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  app.get('/healthz', { schema: { hide: true } }, async (_req, reply) => {
    let database = false;
    try {
      database = deps.inventory.ping();
    } catch {
      database = false;
    }
    return reply.status(database ? 200 : 503).send({ status: database ? 'ok' : 'degraded', database, version: deps.version });
  });

  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    const body = await deps.metrics.registry.metrics();
    return reply.type(deps.metrics.registry.contentType).send(body);
  });
};
