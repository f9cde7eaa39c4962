import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ApiClient } from '../client.js';
import { makePrinter, type Format, type Printer } from '../output.js';
import { resolveClientSettings, type GlobalOptions } from '../settings.js';

export class UsageError extends Error {}

export interface Ctx {
  api: ApiClient;
  out: Printer;
}

/** Builds the API client and printer from the global flags of the command being run. */
export function ctx(cmd: Command): Ctx {
  const g = cmd.optsWithGlobals<GlobalOptions>();
  const format = (g.output ?? 'table') as Format;
  if (format !== 'table' && format !== 'json') throw new UsageError(`-o: unknown output format "${g.output}" (table or json)`);
  const s = resolveClientSettings(g, process.env);
  return { api: new ApiClient(s.url, s.token), out: makePrinter(format) };
}

/** Repeatable option collector: --label a=b --label c=d. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function keyValues(items: string[] | undefined, flag: string): Record<string, string> | undefined {
  if (!items) return undefined;
  const out: Record<string, string> = {};
  for (const item of items) {
    const i = item.indexOf('=');
    if (i <= 0) throw new UsageError(`${flag}: "${item}" is not key=value`);
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}

export function intOption(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new UsageError(`${flag}: "${value}" is not a whole number`);
  return n;
}

/** Secrets come from a file or standard input ("-"), never the command line, where ps shows them. */
export function readSecret(file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  return readFileSync(file === '-' ? 0 : file, 'utf8').trim();
}
