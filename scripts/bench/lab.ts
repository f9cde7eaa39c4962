import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { NetLab } from '../../test/support/netns.js';

/**
 * The tests' NetLab, with the benchmark's own names: every namespace is `hbperf-<tag>-<name>` and
 * every veth is made as `hbp<random>`, so what the bench creates is told apart from what the tests
 * (or anyone else) create, and a leftover is easy to find and remove.
 */
export class BenchLab extends NetLab {
  private readonly own: string[] = [];

  override ns(name: string): string {
    const full = `hbperf-${this.tag}-${name}`;
    execFileSync('ip', ['netns', 'add', full]);
    this.own.push(full);
    this.ip(full, 'link', 'set', 'lo', 'up');
    return full;
  }

  override link(a: { ns: string; ifname: string; cidr?: string }, b: { ns: string; ifname: string; cidr?: string }): void {
    const tmpA = `hbp${randomBytes(4).toString('hex')}`;
    const tmpB = `hbp${randomBytes(4).toString('hex')}`;
    execFileSync('ip', ['link', 'add', tmpA, 'type', 'veth', 'peer', 'name', tmpB]);
    execFileSync('ip', ['link', 'set', tmpA, 'netns', a.ns]);
    execFileSync('ip', ['link', 'set', tmpB, 'netns', b.ns]);
    this.ip(a.ns, 'link', 'set', tmpA, 'name', a.ifname);
    this.ip(b.ns, 'link', 'set', tmpB, 'name', b.ifname);
    for (const end of [a, b]) {
      if (end.cidr) this.ip(end.ns, 'addr', 'add', end.cidr, 'dev', end.ifname);
      this.ip(end.ns, 'link', 'set', end.ifname, 'up');
    }
  }

  override async destroy(): Promise<void> {
    await super.destroy();
    for (const ns of this.own.reverse()) {
      try {
        execFileSync('ip', ['netns', 'del', ns]);
      } catch {
        /* already gone */
      }
    }
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
