import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { errorBody } from './errors.js';

/**
 * Bearer-token check. Tokens are compared as SHA-256 digests with timingSafeEqual, so neither their
 * content nor their length leaks through timing.
 */
export function bearerAuth(token: string) {
  const expected = digest(token);
  return async function checkBearer(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) {
      await reply
        .status(401)
        .header('www-authenticate', 'Bearer realm="hiveboot"')
        .send(errorBody(401, 'missing bearer token (Authorization: Bearer <token>)', 'authorization'));
      return;
    }
    if (!timingSafeEqual(digest(match[1]!), expected)) {
      await reply
        .status(401)
        .header('www-authenticate', 'Bearer realm="hiveboot", error="invalid_token"')
        .send(errorBody(401, 'invalid bearer token', 'authorization'));
    }
  };
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
