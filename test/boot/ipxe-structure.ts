import { expect } from 'vitest';

/**
 * A tiny structural check of a rendered iPXE script: the first line is `#!ipxe` and every other
 * non-empty line is a comment, a label, or a chain of known commands joined by `||` / `&&`. A value
 * that smuggled a newline and a command (`shell`, `login`, `imgexec` ...) into the script is caught
 * here even if it slipped past the helpers.
 */
export const KNOWN_COMMANDS = new Set([
  'set',
  'echo',
  'sanboot',
  'chain',
  'goto',
  'sleep',
  'exit',
  'iseq',
  'params',
  'param',
  'imgfetch',
  'imgfree',
]);

/** Returns the problems found (empty when the script is well formed). */
export function ipxeStructureProblems(script: string): string[] {
  const problems: string[] = [];
  const lines = script.split('\n');
  if (lines[0] !== '#!ipxe') problems.push(`line 1: expected "#!ipxe", got ${JSON.stringify(lines[0])}`);
  lines.slice(1).forEach((raw, i) => {
    const line = raw.trim();
    const where = `line ${i + 2}`;
    if (raw.includes('\r')) problems.push(`${where}: carriage return`);
    if (line === '' || line.startsWith('#')) return;
    if (line.startsWith(':')) {
      if (!/^:[A-Za-z0-9_-]+$/.test(line)) problems.push(`${where}: malformed label ${JSON.stringify(line)}`);
      return;
    }
    const segments = line.split(/\|\||&&/);
    segments.forEach((segment, j) => {
      const word = segment.trim().split(/\s+/)[0] ?? '';
      // `cmd ||` (nothing after the operator) is iPXE's idiom for "ignore the error".
      if (word === '' && j === segments.length - 1 && j > 0) return;
      if (!KNOWN_COMMANDS.has(word)) problems.push(`${where}: unknown command ${JSON.stringify(word)} in ${JSON.stringify(line)}`);
    });
  });
  return problems;
}

export function expectWellFormedIpxe(script: string): void {
  expect(ipxeStructureProblems(script), script).toEqual([]);
}

/** The lines of a script that are not comments, trimmed. */
export function commandLines(script: string): string[] {
  return script
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}
