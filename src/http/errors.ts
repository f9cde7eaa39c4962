import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ConflictError, DomainError, NotFoundError, ValidationError } from '../model/errors.js';

/** Every API error body: a short error name, a sentence for humans, and the field to fix if any. */
export interface ErrorBody {
  error: string;
  message: string;
  field?: string;
}

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

const NAMES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function errorBody(status: number, message: string, field?: string): ErrorBody {
  return field ? { error: NAMES[status] ?? 'Error', message, field } : { error: NAMES[status] ?? 'Error', message };
}

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** "/disk/portals/0" → "disk.portals.0", plus the missing or unknown property; the request part is left out. */
function validationField(e: AjvError): string {
  const parts = e.instancePath.split('/').filter(Boolean).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const first = (v: unknown) => (Array.isArray(v) && typeof v[0] === 'string' ? v[0] : typeof v === 'string' ? v : undefined);
  const extra =
    e.keyword === 'required'
      ? first(e.params.requiredProperties ?? e.params.missingProperty)
      : e.keyword === 'additionalProperties'
        ? first(e.params.additionalProperties ?? e.params.additionalProperty)
        : undefined;
  if (extra) parts.push(extra);
  return parts.join('.');
}

function isUnknownField(e: AjvError): boolean {
  return e.keyword === 'additionalProperties' || (e.keyword === 'boolean' && e.message === 'schema is false');
}

function validationMessage(e: AjvError, field: string): string {
  if (isUnknownField(e)) return `${field} is not a known field`;
  switch (e.keyword) {
    case 'required':
      return `${field} is required`;
    case 'minProperties':
      return 'give at least one field to change';
    default:
      return `${field || 'body'} ${e.message ?? 'is invalid'}`;
  }
}

/** Maps every error to {error, message, field}; bad input is always a 4xx, never a 500. */
export function errorHandler(err: FastifyError | Error, req: FastifyRequest, reply: FastifyReply): void {
  const send = (status: number, message: string, field?: string) => {
    void reply.status(status).type('application/json').send(errorBody(status, message, field));
  };
  const fe = err as FastifyError & { validation?: AjvError[]; validationContext?: string };
  if (fe.validation && fe.validation.length > 0) {
    // Prefer a precise error over a union's "must match a schema in anyOf" summary.
    const e = fe.validation.find((v) => v.keyword !== 'anyOf' && v.keyword !== 'oneOf') ?? fe.validation[0]!;
    const prefix = fe.validationContext && fe.validationContext !== 'body' ? `${fe.validationContext}.` : '';
    const field = validationField(e);
    return send(400, validationMessage(e, prefix + field), prefix + field || fe.validationContext);
  }
  if (err instanceof ValidationError) return send(400, err.message, err.field);
  if (err instanceof NotFoundError) return send(404, err.message, err.field);
  if (err instanceof ConflictError) return send(409, err.message, err.field);
  if (err instanceof DomainError) return send(400, err.message, err.field);
  if (err instanceof HttpError) return send(err.statusCode, err.message, err.field);
  const status = fe.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    // Fastify's own client errors: malformed JSON, wrong content type, body too large...
    const field = fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || fe.code?.startsWith('FST_ERR_CTP') ? 'body' : undefined;
    return send(status, err.message, field);
  }
  req.log.error({ err }, 'request failed');
  send(500, 'internal error; see the hiveboot log');
}
