import type { FastifyPluginAsyncTypebox as FastifyPluginAsync } from '@fastify/type-provider-typebox';
import type { AppDeps } from '../app.js';

/**
 * Unauthenticated: health for systemd/monitoring, and Prometheus metrics. /healthz is 200 only once
 * the daemon has started every listener and its database answers; 503 while it starts or degrades.
 */
export const healthRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  app.get('/healthz', { schema: { hide: true } }, async (_req, reply) => {
    let database = false;
    try {
      database = deps.inventory.ping();
    } catch {
      database = false;
    }
    const ready = deps.ready?.() ?? true;
    const status = !ready ? 'starting' : database ? 'ok' : 'degraded';
    return reply.status(ready && database ? 200 : 503).send({ status, database, version: deps.version });
  });

  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    const body = await deps.metrics.registry.metrics();
    return reply.type(deps.metrics.registry.contentType).send(body);
  });
};
