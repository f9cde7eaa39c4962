import Handlebars from 'handlebars';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isIpxeSafeValue } from '../model/ipxe-text.js';
import { printable } from '../model/identifiers.js';

/** boot-templates/ shipped with hiveboot (src/boot → ../../boot-templates, same from dist/boot). */
export const DEFAULT_TEMPLATES_DIR = fileURLToPath(new URL('../../boot-templates/', import.meta.url));

const SUFFIX = '.ipxe.hbs';

export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

/**
 * Helpers that may print a value. Each one refuses what could change the meaning of an iPXE line.
 * A template that prints anything in another way is refused at load time (see checkTemplate), so a
 * forgotten helper is a start-up error rather than an injection.
 */
const SAFE_HELPERS = new Set(['v', 'args', 'efipath']);

function helperV(value: unknown, options: Handlebars.HelperOptions | undefined): string {
  const s = scalar(value, options);
  if (!isIpxeSafeValue(s)) {
    throw new TemplateError(`refusing to put "${printable(s)}" on an iPXE line (whitespace, $ # \\ ; | & or quotes)`);
  }
  return s;
}

function helperArgs(value: unknown, options: Handlebars.HelperOptions | undefined): string {
  const s = scalar(value, options);
  if (/[\t\r\n\v\f$#\\;|&\x00-\x1f\x7f"'`]/.test(s)) {
    throw new TemplateError(`refusing to put arguments "${printable(s)}" on an iPXE line`);
  }
  return s;
}

/** An EFI path (stored with '/') printed with the backslashes UEFI file paths use. */
function helperEfiPath(value: unknown, options: Handlebars.HelperOptions | undefined): string {
  const s = scalar(value, options);
  if (!/^(\/[A-Za-z0-9._-]+)+$/.test(s) || s.split('/').some((seg) => seg === '.' || seg === '..')) {
    throw new TemplateError(`refusing EFI path "${printable(s)}"`);
  }
  return s.replace(/\//g, '\\');
}

function scalar(value: unknown, options: Handlebars.HelperOptions | undefined): string {
  if (options === undefined) throw new TemplateError('helper called without a value');
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'string') return value;
  throw new TemplateError(`cannot print a ${value === null ? 'null' : typeof value} on an iPXE line`);
}

/** Walks a template's syntax tree: every {{...}} that prints must go through a safe helper. */
export function checkTemplate(name: string, source: string): void {
  let ast: ReturnType<typeof Handlebars.parse>;
  try {
    ast = Handlebars.parse(source);
  } catch (err) {
    throw new TemplateError(`${name}${SUFFIX}: ${(err as Error).message}`);
  }
  const problems: string[] = [];
  const visit = (node: unknown): void => {
    if (!node || typeof node !== 'object') return;
    const n = node as { type?: string; path?: { original?: string }; params?: unknown[]; loc?: { start: { line: number } } };
    const line = n.loc?.start.line ?? 0;
    if (n.type === 'MustacheStatement') {
      const helper = n.path?.original ?? '';
      if (!SAFE_HELPERS.has(helper) || !n.params || n.params.length !== 1) {
        problems.push(`line ${line}: "{{${helper}...}}" prints without a safe helper (use {{v x}}, {{args x}} or {{efipath x}})`);
      }
    } else if (n.type === 'PartialStatement' || n.type === 'PartialBlockStatement' || n.type === 'DecoratorBlock' || n.type === 'Decorator') {
      problems.push(`line ${line}: partials and decorators are not supported`);
    }
    for (const value of Object.values(n)) {
      if (Array.isArray(value)) value.forEach(visit);
      else if (value && typeof value === 'object' && value !== n.loc) visit(value);
    }
  };
  visit(ast);
  if (problems.length > 0) throw new TemplateError(`${name}${SUFFIX}: ${problems.join('; ')}`);
}

/**
 * The boot templates, compiled once in an isolated Handlebars environment (no global helpers or
 * partials, noEscape because HTML escaping means nothing to iPXE, strict so a misspelt field fails).
 */
export class TemplateSet {
  private constructor(private readonly compiled: Map<string, Handlebars.TemplateDelegate>) {}

  static fromSources(sources: Record<string, string>): TemplateSet {
    const env = Handlebars.create();
    env.registerHelper('v', helperV);
    env.registerHelper('args', helperArgs);
    env.registerHelper('efipath', helperEfiPath);
    const compiled = new Map<string, Handlebars.TemplateDelegate>();
    const options = {
      noEscape: true,
      strict: true,
      knownHelpersOnly: true,
      knownHelpers: { v: true, args: true, efipath: true },
    };
    for (const [name, source] of Object.entries(sources)) {
      checkTemplate(name, source);
      // env.compile is lazy (it compiles on first render): precompile now so that an unknown block
      // helper is a load-time TemplateError, not an exception on a machine's first boot request.
      try {
        env.precompile(source, options);
      } catch (err) {
        throw new TemplateError(`${name}${SUFFIX}: ${(err as Error).message}`);
      }
      compiled.set(name, env.compile(source, options));
    }
    return new TemplateSet(compiled);
  }

  static fromDirectory(dir: string): TemplateSet {
    let files: string[];
    try {
      files = readdirSync(dir).filter((f) => f.endsWith(SUFFIX));
    } catch (err) {
      throw new TemplateError(`cannot read boot templates from ${dir}: ${(err as Error).message}`);
    }
    const sources: Record<string, string> = {};
    for (const f of files) sources[f.slice(0, -SUFFIX.length)] = readFileSync(join(dir, f), 'utf8');
    const set = TemplateSet.fromSources(sources);
    for (const required of ['bootstrap', 'discovery', 'wait', 'exit', 'sanboot']) {
      if (!set.has(required)) throw new TemplateError(`${dir}: missing ${required}${SUFFIX}`);
    }
    return set;
  }

  has(name: string): boolean {
    return this.compiled.has(name);
  }

  names(): string[] {
    return [...this.compiled.keys()].sort();
  }

  render(name: string, context: object): string {
    const t = this.compiled.get(name);
    if (!t) throw new TemplateError(`no template "${name}"`);
    let out: string;
    try {
      out = t(context, { allowProtoPropertiesByDefault: false, allowProtoMethodsByDefault: false });
    } catch (err) {
      if (err instanceof TemplateError) throw err;
      // Strict mode reports a missing parent ({{v disk.lun}} without disk) as a plain error: keep it a template error.
      throw new TemplateError(`template "${name}": ${(err as Error).message}`);
    }
    if (!out.startsWith('#!ipxe')) throw new TemplateError(`template "${name}" does not start with #!ipxe`);
    return out;
  }
}
