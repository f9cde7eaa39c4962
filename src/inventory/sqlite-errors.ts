import { ConflictError, ValidationError } from '../model/errors.js';

/**
 * Turns SQLite constraint failures into domain errors naming the field. The explicit checks in the
 * stores catch the common cases with better messages; this is the backstop for races between them.
 */
export function translateConstraint(err: unknown, fields: Record<string, string>): never {
  const e = err as { code?: string; message?: string };
  if (e.code === 'SQLITE_CONSTRAINT_UNIQUE' || e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    for (const [column, field] of Object.entries(fields)) {
      if (e.message?.includes(`.${column}`)) throw new ConflictError(`${field} is already in use`, field);
    }
    throw new ConflictError('already exists');
  }
  if (e.code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
    throw new ValidationError('refers to something that does not exist, or is still referred to');
  }
  throw err;
}

export function parseJsonMap(text: string | null | undefined): Record<string, string> {
  if (!text) return {};
  const v = JSON.parse(text) as unknown;
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, string>) : {};
}
