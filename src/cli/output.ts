/** Output for people (aligned tables, key: value) or for scripts (-o json). */
export type Format = 'table' | 'json';

export interface Printer {
  format: Format;
  json(value: unknown): void;
  table(rows: Record<string, unknown>[], columns: [header: string, key: string][]): void;
  record(value: Record<string, unknown>): void;
  line(text: string): void;
}

export function makePrinter(format: Format, write: (s: string) => void = (s) => process.stdout.write(s)): Printer {
  const printer: Printer = {
    format,
    json: (value) => write(`${JSON.stringify(value, null, 2)}\n`),
    table(rows, columns) {
      if (format === 'json') return printer.json(rows);
      const cells = rows.map((r) => columns.map(([, key]) => cell(r[key])));
      const widths = columns.map(([h], i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
      const fmt = (vals: string[]) => vals.map((v, i) => (i === vals.length - 1 ? v : v.padEnd(widths[i]!))).join('  ').trimEnd();
      write(`${fmt(columns.map(([h]) => h))}\n`);
      for (const c of cells) write(`${fmt(c)}\n`);
    },
    record(value) {
      if (format === 'json') return printer.json(value);
      const flat = flatten(value);
      const width = Math.max(...Object.keys(flat).map((k) => k.length));
      for (const [k, v] of Object.entries(flat)) write(`${`${k}:`.padEnd(width + 2)}${v}\n`);
    },
    line(text) {
      if (format !== 'json') write(`${text}\n`);
    },
  };
  return printer;
}

function cell(v: unknown): string {
  if (v === null || v === undefined || v === '') return '-';
  if (typeof v === 'object') return Object.entries(v as object).map(([k, x]) => `${k}=${x}`).join(',') || '-';
  return String(v);
}

function flatten(v: Record<string, unknown>, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (x && typeof x === 'object' && !Array.isArray(x) && Object.keys(x).length > 0) Object.assign(out, flatten(x as Record<string, unknown>, key));
    else out[key] = Array.isArray(x) ? x.join(', ') || '-' : cell(x);
  }
  return out;
}
