// `hiveboot serve --config FILE` as a child process that a test stops (SIGTERM or SIGKILL) and starts
// again on the same config file and state directory, as an operator or a service manager would. It
// runs the real serve command (config file, signal handling, exit codes) from the TypeScript
// sources, through test/systemd/serve-cli.ts, so the test does not depend on dist/ being up to date.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { waitForOutput } from './netns.js';

const ROOT = join(import.meta.dirname, '..', '..');
const SERVE_CLI = join(ROOT, 'test', 'systemd', 'serve-cli.ts');

/**
 * `n` distinct TCP ports on 127.0.0.1 that were free a moment ago (each is held until all are
 * known, so none is handed out twice), for a daemon that must come back on the same ports.
 */
export async function freeLoopbackPorts(n: number): Promise<number[]> {
  const held: Server[] = [];
  for (let i = 0; i < n; i++) {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    held.push(server);
  }
  const ports = held.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(held.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

export type ServeExit = { code: number | null; signal: NodeJS.Signals | null };

export class ServeProcess {
  private child?: ChildProcess;
  private exited?: Promise<ServeExit>;

  /** `logFile` gets the daemon's output, appended to across restarts. */
  constructor(
    readonly configPath: string,
    readonly logFile: string,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the daemon and waits for "hiveboot is up"; returns everything it printed until then. */
  async start(timeoutMs = 60_000): Promise<string> {
    if (this.running()) throw new Error(`hiveboot serve is already running (pid ${this.child!.pid})`);
    // Nothing from the test's own environment may configure it (HIVEBOOT_*) or speak for it to a service manager.
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!/^(HIVEBOOT_|NOTIFY_SOCKET$|WATCHDOG_)/.test(k)) env[k] = v;
    const child = spawn(process.execPath, ['--import', 'tsx', SERVE_CLI, 'serve', '--config', this.configPath], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const log = createWriteStream(this.logFile, { flags: 'a' });
    child.stdout!.on('data', (d: Buffer) => log.write(d));
    child.stderr!.on('data', (d: Buffer) => log.write(d));
    // 'close', not 'exit': by then everything the daemon wrote has been read.
    this.exited = new Promise((resolve) =>
      child.once('close', (code, signal) => {
        log.end();
        resolve({ code, signal });
      }),
    );
    this.child = child;
    try {
      return await waitForOutput(child, (text) => text.includes('hiveboot is up'), timeoutMs);
    } catch (err) {
      await this.stop('SIGKILL');
      throw err;
    }
  }

  /** Sends `signal` and waits until the process is gone (SIGKILL after `timeoutMs`, and an error). */
  async stop(signal: 'SIGTERM' | 'SIGKILL', timeoutMs = 30_000): Promise<ServeExit | undefined> {
    if (!this.child || !this.exited) return undefined;
    const child = this.child;
    if (this.running()) child.kill(signal);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    const exit = await this.exited;
    clearTimeout(timer);
    this.child = undefined;
    if (timedOut) throw new Error(`hiveboot serve (pid ${child.pid}) did not exit within ${timeoutMs / 1000} s of ${signal}`);
    return exit;
  }

  private running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }
}
