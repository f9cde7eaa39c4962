import type { FastifyPluginAsyncTypebox as FastifyPluginAsync } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { Facts } from '../../model/schemas.js';
import { baseUrlOf, type AppDeps } from '../app.js';
import { HttpError } from '../errors.js';

const IPXE = 'text/plain; charset=utf-8';

/**
 * Routes served to firmware (no token): the bootstrap script DHCP points iPXE at, and each machine's
 * own script. Scripts are never cached: the answer changes as soon as a host is approved.
 */
export const bootRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  app.get('/boot.ipxe', { schema: { tags: ['boot'], security: [], summary: 'Bootstrap iPXE script (chains to the per-MAC script)' } }, async (req, reply) => {
    const script = deps.boot.bootstrapScript(baseUrlOf(req, deps.publicUrl), req.ip);
    return reply.type(IPXE).header('cache-control', 'no-store').send(script);
  });

  app.get(
    '/boot/:file',
    {
      schema: {
        tags: ['boot'],
        security: [],
        summary: 'iPXE script for one machine: GET /boot/<mac>.ipxe',
        params: Type.Object({ file: Type.String({ maxLength: 64, description: '<mac>.ipxe' }) }),
        // Lenient on extra parameters: firmware and people add their own; only the known facts are kept.
        querystring: Type.Object({ ...Facts.properties }),
      },
    },
    async (req, reply) => {
      const file = req.params.file;
      if (!file.endsWith('.ipxe')) throw new HttpError(404, `no route GET /boot/${file} (expected /boot/<mac>.ipxe)`, 'mac');
      // The schema lets unknown parameters through; drop them here so that only known facts are stored.
      const facts = Object.fromEntries(Object.entries(req.query).filter(([k]) => Object.hasOwn(Facts.properties, k)));
      const result = deps.boot.hostScript(file.slice(0, -'.ipxe'.length), {
        sourceIp: req.ip,
        baseUrl: baseUrlOf(req, deps.publicUrl),
        facts,
      });
      deps.metrics.bootScripts.inc({ decision: result.decision });
      return reply.type(IPXE).header('cache-control', 'no-store').send(result.script);
    },
  );
};
