import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const SERVE = join(import.meta.dirname, 'serve.ts');

/**
 * Network namespaces made by a test and torn down by it: the only place DHCP test traffic goes.
 * Nothing here touches an existing interface; every name carries a random tag so parallel test
 * files and leftovers from a killed run never collide.
 */
export class NetLab {
  readonly tag = randomBytes(3).toString('hex');
  private readonly namespaces: string[] = [];
  private readonly children: ChildProcess[] = [];

  static available(): boolean {
    if (process.getuid?.() !== 0) return false;
    try {
      execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  }

  /** Namespaces are `<prefix><tag>-<name>`: whoever made one is told by its prefix. */
  protected readonly namespacePrefix: string = 'hb';

  /** A veth end's temporary name (it is renamed inside its namespace); `side` is 0 or 1. */
  protected vethName(side: 0 | 1): string {
    return `${side === 0 ? 'v' : 'w'}${this.tag}${randomBytes(2).toString('hex')}`;
  }

  /** Creates namespace `<prefix><tag>-<name>` with loopback up; returns its full name. */
  ns(name: string): string {
    const full = `${this.namespacePrefix}${this.tag}-${name}`;
    execFileSync('ip', ['netns', 'add', full]);
    this.namespaces.push(full);
    this.ip(full, 'link', 'set', 'lo', 'up');
    return full;
  }

  /** A veth pair between two namespaces, both ends up, optional addresses (CIDR). */
  link(a: { ns: string; ifname: string; cidr?: string }, b: { ns: string; ifname: string; cidr?: string }): void {
    const tmpA = this.vethName(0);
    const tmpB = this.vethName(1);
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

  /** A bridge with an address (the boot network's switch, with the server on it). */
  bridge(ns: string, name: string, cidr: string): void {
    this.ip(ns, 'link', 'add', name, 'type', 'bridge');
    this.ip(ns, 'addr', 'add', cidr, 'dev', name);
    this.ip(ns, 'link', 'set', name, 'up');
  }

  /** A tap on a bridge, for a QEMU guest's NIC. */
  tap(ns: string, name: string, bridge: string): void {
    this.ip(ns, 'tuntap', 'add', 'dev', name, 'mode', 'tap');
    this.ip(ns, 'link', 'set', name, 'master', bridge);
    this.ip(ns, 'link', 'set', name, 'up');
  }

  /**
   * Starts hiveboot (from the sources) inside a namespace with `stateDir: <dir>/state` plus the
   * given YAML, its output going to `<dir>/hiveboot.log`, and waits until it is up. Returns the
   * process and its database's path.
   */
  async hiveboot(ns: string, dir: string, yaml: string, env: NodeJS.ProcessEnv = process.env): Promise<{ process: ChildProcess; dbPath: string; configPath: string }> {
    const configPath = join(dir, 'hiveboot.yaml');
    writeFileSync(configPath, `stateDir: ${join(dir, 'state')}\n${yaml}`);
    const child = this.spawn(ns, process.execPath, [...(env.HIVEBOOT_NODE_ARGS?.split(' ').filter(Boolean) ?? []), ...this.daemonArgs(configPath)], env);
    // Its log, for diagnosis next to the test's other files (appended to across restarts).
    const log = createWriteStream(join(dir, 'hiveboot.log'), { flags: 'a' });
    child.stdout!.on('data', (d: Buffer) => log.write(d));
    child.stderr!.on('data', (d: Buffer) => log.write(d));
    child.once('close', () => log.end());
    await waitForOutput(child, (t) => t.includes('hiveboot is up'), 30_000);
    return { process: child, dbPath: join(dir, 'state', 'hiveboot.db'), configPath };
  }

  /** How the daemon is started (after node's own flags): from the sources, so tests need no build. */
  protected daemonArgs(configPath: string): string[] {
    return ['--import', 'tsx', SERVE, configPath];
  }

  ip(ns: string, ...args: string[]): string {
    return execFileSync('ip', ['-n', ns, ...args], { encoding: 'utf8' });
  }

  /** Runs a command inside a namespace to completion. */
  run(ns: string, cmd: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = this.spawn(ns, cmd, args);
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d) => (stdout += d));
      child.stderr!.on('data', (d) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
      if (opts.input !== undefined) child.stdin!.end(opts.input);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  /** Starts a long-running command inside a namespace; it is killed (by PID) on destroy(). */
  spawn(ns: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env });
    this.children.push(child);
    return child;
  }

  /** Stops what it started (SIGTERM, then SIGKILL after 2 s), then deletes its namespaces. */
  async destroy(): Promise<void> {
    const running = this.children.filter((c) => c.exitCode === null && c.signalCode === null);
    const closed = running.map((c) => new Promise((r) => c.once('close', r)));
    for (const c of running) c.kill('SIGTERM');
    const timer = setTimeout(() => running.forEach((c) => c.exitCode === null && c.signalCode === null && c.kill('SIGKILL')), 2000);
    await Promise.all(closed);
    clearTimeout(timer);
    for (const ns of this.namespaces.reverse()) {
      try {
        execFileSync('ip', ['netns', 'del', ns]);
      } catch {
        /* already gone */
      }
    }
  }
}

/** Waits until `predicate` is true of the text a child has printed so far. */
export function waitForOutput(child: ChildProcess, predicate: (text: string) => boolean, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (d: Buffer) => {
      text += d.toString();
      if (predicate(text)) done(() => resolve(text));
    };
    const timer = setTimeout(() => done(() => reject(new Error(`timed out; output so far:\n${text}`))), timeoutMs);
    const onClose = () => done(() => reject(new Error(`process exited; output:\n${text}`)));
    const done = (f: () => void) => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('close', onClose);
      f();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('close', onClose);
  });
}
