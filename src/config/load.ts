import { readFileSync } from 'node:fs';
import { Value } from 'typebox/value';
import { parseDocument } from 'yaml';
import { normalizeIqn } from '../model/identifiers.js';
import { Config } from './schema.js';

export const DEFAULT_CONFIG_PATH = '/etc/hiveboot/hiveboot.yaml';
export const ENV_PREFIX = 'HIVEBOOT_';

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly field: string,
    readonly detail: string,
  ) {
    super(`${file}: ${field ? `${field}: ` : ''}${detail}`);
    this.name = 'ConfigError';
  }
}

export interface LoadOptions {
  /** Path to the YAML file; a missing file is an error only when `required` is set. */
  path?: string;
  required?: boolean;
  /** Environment to read HIVEBOOT_* overrides from. */
  env?: NodeJS.ProcessEnv;
}

export interface LoadedConfig {
  config: Config;
  /** The file that was read, if any. */
  file?: string;
}

/**
 * Reads the YAML file, applies HIVEBOOT_* environment overrides, fills defaults and validates.
 * The only place that interprets the environment for the daemon: everything else receives a Config.
 */
export function loadConfig(opts: LoadOptions = {}): LoadedConfig {
  const path = opts.path ?? DEFAULT_CONFIG_PATH;
  let raw: unknown = {};
  let file: string | undefined;
  let text: string | undefined;
  try {
    text = readFileSync(path, 'utf8');
    file = path;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' || opts.required) throw new ConfigError(path, '', `cannot read: ${(err as Error).message}`);
  }
  if (text !== undefined) {
    const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
    if (doc.errors.length > 0) {
      const e = doc.errors[0]!;
      throw new ConfigError(path, '', `invalid YAML: ${e.message.split('\n')[0]}`);
    }
    raw = doc.toJS() ?? {};
    if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(path, '', 'must be a mapping of sections');
    // A section whose settings are all commented out (as in the sample file) is YAML null: its defaults.
    const sections = raw as Record<string, unknown>;
    for (const [key, value] of Object.entries(sections)) if (value === null) delete sections[key];
  }
  const source = file ?? (opts.path ? path : 'defaults');
  const merged = applyEnv(structuredClone(raw) as Record<string, unknown>, opts.env ?? {});
  try {
    return { config: validateConfig(merged, source), file };
  } catch (err) {
    // A value that came from the environment is reported as the variable, not as the file.
    const envName = err instanceof ConfigError ? envNameOf(err.field) : undefined;
    if (err instanceof ConfigError && envName && opts.env?.[envName] !== undefined) {
      throw new ConfigError('environment', `${envName} (${err.field})`, err.detail);
    }
    throw err;
  }
}

/** Fills defaults and validates; errors name the source and the dotted field. */
export function validateConfig(raw: unknown, source = 'config'): Config {
  const withDefaults = Value.Default(Config, Value.Clone(raw));
  const errors = [...Value.Errors(Config, withDefaults)];
  if (errors.length > 0) {
    // The most specific error is the most useful: prefer one that points inside the document.
    const e = errors.find((x) => x.keyword !== 'additionalProperties' && x.keyword !== 'boolean') ?? errors[0]!;
    let field = pointerToField(e.instancePath);
    let message = e.message;
    const extra = (e.params as { additionalProperties?: string[] }).additionalProperties;
    if (e.keyword === 'additionalProperties' && extra?.length) {
      field = [field, extra[0]].filter(Boolean).join('.');
      message = 'unknown setting';
    } else if (e.keyword === 'boolean' && e.message === 'schema is false') {
      message = 'unknown setting';
    }
    throw new ConfigError(source, field, message);
  }
  const config = withDefaults as Config;
  // Rules a JSON schema cannot say clearly.
  try {
    normalizeIqn(`${config.boot.initiatorIqnPrefix}:host`, 'boot.initiatorIqnPrefix');
  } catch {
    throw new ConfigError(source, 'boot.initiatorIqnPrefix', `"${config.boot.initiatorIqnPrefix}" is not an iSCSI name prefix such as iqn.2026-01.io.hiveboot`);
  }
  return config;
}

function pointerToField(pointer: string): string {
  return pointer
    .split('/')
    .filter(Boolean)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.');
}

/**
 * HIVEBOOT_HTTP_PORT=9000 sets http.port; HIVEBOOT_STATE_DIR sets stateDir. Names come from the
 * schema (camelCase → UPPER_SNAKE), so every setting can be overridden and no name is invented.
 */
export function applyEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  for (const leaf of schemaLeaves(Config, [])) {
    const name = ENV_PREFIX + leaf.path.map(toSnake).join('_');
    const value = env[name];
    if (value === undefined) continue;
    let target = raw;
    for (const key of leaf.path.slice(0, -1)) {
      const next = target[key];
      if (typeof next !== 'object' || next === null) target[key] = {};
      target = target[key] as Record<string, unknown>;
    }
    target[leaf.path[leaf.path.length - 1]!] = coerce(value, leaf.type, name);
  }
  return raw;
}

interface Leaf {
  path: string[];
  type: string;
}

function schemaLeaves(schema: unknown, path: string[]): Leaf[] {
  const s = schema as { type?: string; properties?: Record<string, unknown>; anyOf?: unknown[] };
  if (s.type === 'object' && s.properties) {
    return Object.entries(s.properties).flatMap(([k, v]) => schemaLeaves(v, [...path, k]));
  }
  const type = s.type ?? (s.anyOf ? 'string' : 'string');
  return [{ path, type }];
}

function coerce(value: string, type: string, name: string): unknown {
  switch (type) {
    case 'integer':
    case 'number': {
      const n = Number(value);
      if (value.trim() === '' || Number.isNaN(n)) throw new ConfigError(`environment`, name, `"${value}" is not a number`);
      return n;
    }
    case 'boolean':
      if (/^(1|true|yes|on)$/i.test(value)) return true;
      if (/^(0|false|no|off)$/i.test(value)) return false;
      throw new ConfigError('environment', name, `"${value}" is not a boolean (true/false)`);
    case 'array':
      return value.split(',').map((v) => v.trim()).filter(Boolean);
    default:
      return value;
  }
}

function envNameOf(field: string): string | undefined {
  return field ? ENV_PREFIX + field.split('.').map(toSnake).join('_') : undefined;
}

function toSnake(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}
