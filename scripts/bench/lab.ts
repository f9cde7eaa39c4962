import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NetLab } from '../../test/support/netns.js';

/**
 * The tests' NetLab, with the benchmark's own names: every namespace is `hbperf-<tag>-<name>` and
 * every veth is made as `hbp<random>`, so what the bench creates is told apart from what the tests
 * (or anyone else) create, and a leftover is easy to find and remove.
 */
export class BenchLab extends NetLab {
  protected override readonly namespacePrefix = 'hbperf-';

  protected override vethName(): string {
    return `hbp${randomBytes(4).toString('hex')}`;
  }

  /** The daemon as users run it: `hiveboot serve` on the compiled dist/ (npm run bench builds it first). */
  protected override daemonArgs(configPath: string): string[] {
    return [join(import.meta.dirname, '../../bin/hiveboot.js'), 'serve', '--config', configPath];
  }
}

/**
 * CPU time a process has used, user + system, in milliseconds, children it has waited for included
 * (/proc/<pid>/stat fields 14-17). Undefined once the process is gone.
 */
export function cpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces: count fields from after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
    return (ticks * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
