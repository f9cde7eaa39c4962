import type { FastifyPluginAsyncTypebox as FastifyPluginAsync } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { FileError } from '../../tftp/files.js';
import type { AppDeps } from '../app.js';
import { HttpError } from '../errors.js';

/**
 * GET /netboot/<file>: the TFTP root over HTTP, for UEFI HTTP boot clients (DHCP hands them a URL
 * here) and for iPXE scripts that chain a binary. Same file rules as TFTP: read-only, regular files
 * inside the root only. Always with Content-Length: firmware is much slower without one.
 */
export const netbootRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const files = deps.netboot;
  if (!files) return;
  app.get(
    '/netboot/*',
    { schema: { tags: ['boot'], security: [], summary: 'A file from the TFTP root (iPXE builds), for HTTP boot', params: Type.Object({ '*': Type.String({ maxLength: 255 }) }) } },
    async (req, reply) => {
      let file;
      try {
        file = await files.open(req.params['*']);
      } catch (err) {
        if (err instanceof FileError) throw new HttpError(err.kind === 'not-found' ? 404 : 403, err.message, 'file');
        throw err;
      }
      try {
        const body = await file.read(0, file.size);
        return reply.type('application/octet-stream').header('content-length', file.size).send(body);
      } finally {
        await file.close();
      }
    },
  );
};
