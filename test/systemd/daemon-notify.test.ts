// `hiveboot serve` under a stand-in service manager: NOTIFY_SOCKET names an abstract socket this test
// binds, as systemd does for a Type=notify unit. READY=1 must come only once every listener answers
// (checked the moment it arrives: HTTP /healthz 200, a TFTP read, an iSCSI TCP connect), watchdog
// pings at WATCHDOG_USEC/2, RELOADING=1 + MONOTONIC_USEC then READY=1 on SIGHUP, STOPPING=1 on
// SIGTERM and a clean exit; and no READY=1 at all from a start that fails.
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { startDaemon } from '../../src/daemon.js';
import { createLogger } from '../../src/log.js';
import { systemdNotifier, type ServiceNotifier } from '../../src/systemd/notify.js';
import { NotifyReceiver } from './notify-receiver.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'test', 'systemd', 'serve-cli.ts');

interface Child {
  process: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function serve(config: string, env: Record<string, string>): Child {
  const clean: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HIVEBOOT_') && !k.startsWith('NOTIFY_') && !k.startsWith('WATCHDOG_')) clean[k] = v;
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve', '--config', config], { cwd: ROOT, env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('close', (code, signal) => r({ code, signal })));
  return { process: child, output: () => out, exited };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** First answer of a TFTP server to a read request (an opcode: 3 DATA, 6 OACK, 5 ERROR). */
function tftpFirstAnswer(port: number, file: string): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const sock = createSocket('udp4');
    const timer = setTimeout(() => {
      sock.close();
      reject(new Error(`no TFTP answer from 127.0.0.1:${port}`));
    }, 2000);
    sock.on('message', (msg) => {
      clearTimeout(timer);
      sock.close();
      resolvePromise(msg.readUInt16BE(0));
    });
    sock.send(Buffer.concat([Buffer.from([0, 1]), Buffer.from(`${file}\0octet\0`)]), port, '127.0.0.1');
  });
}

/** Local ports of this process's sockets in a state (/proc/net/tcp: 0A LISTEN; udp: 07 bound). */
function boundPorts(table: 'tcp' | 'udp', state: string): Set<number> {
  const ports = new Set<number>();
  for (const line of readFileSync(`/proc/self/net/${table}`, 'utf8').split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols[3] === state) ports.add(parseInt(cols[1]!.split(':')[1]!, 16));
  }
  return ports;
}

function tcpConnects(port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const c = createConnection({ host: '127.0.0.1', port }, () => {
      c.destroy();
      resolvePromise(true);
    });
    c.on('error', () => resolvePromise(false));
  });
}

describe.skipIf(process.platform !== 'linux')('hiveboot serve tells its service manager', () => {
  let dir: string;
  let receiver: NotifyReceiver | undefined;
  let child: Child | undefined;
  let blocker: Server | undefined;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'hb-daemon-notify-'));
  });
  afterEach(async () => {
    if (child && child.process.exitCode === null && child.process.signalCode === null) {
      child.process.kill('SIGKILL');
      await child.exited;
    }
    child = undefined;
    receiver?.close();
    receiver = undefined;
    await new Promise<void>((r) => (blocker ? blocker.close(() => r()) : r()));
    blocker = undefined;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const writeConfig = (name: string, httpPort: number) => {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(
      file,
      [`stateDir: ${join(dir, `${name}-state`)}`, 'http: { listen: 127.0.0.1, port: ' + httpPort + ' }', 'tftp: { listen: 127.0.0.1, port: 0 }',
        'iscsi: { listen: 127.0.0.1, port: 0 }', 'dhcp: { mode: off }', ''].join('\n'),
    );
    return file;
  };

  it('READY=1 once every listener answers, watchdog pings, RELOADING/READY on SIGHUP, STOPPING on SIGTERM', async () => {
    const address = `@hiveboot-test/daemon/${process.pid}/${Date.now()}`;
    let ready: Awaited<ReturnType<NotifyReceiver['waitFor']>> | undefined;
    let port = 0;
    // The HTTP port is chosen free a moment before the daemon binds it: try another if it was taken.
    for (let attempt = 1; !ready; attempt++) {
      receiver?.close();
      receiver = NotifyReceiver.bind(address);
      port = await freePort();
      child = serve(writeConfig('ok', port), { NOTIFY_SOCKET: address, WATCHDOG_USEC: '400000' });
      const started = performance.now();
      const r = receiver;
      ready = await Promise.race([r.waitFor('READY', 30_000), child.exited.then(() => undefined)]);
      if (!ready && attempt < 3 && child.output().includes('EADDRINUSE')) continue;
      expect(ready, child.output()).toBeDefined();
      console.log(`READY=1 ${((ready!.at - started) / 1000).toFixed(2)} s after spawn: ${ready!.fields.STATUS}`);
    }
    const r = receiver!;

    // The moment READY=1 arrives, every listener it names must already answer.
    const status = ready.fields.STATUS!;
    const m = /^serving http:\/\/127\.0\.0\.1:(\d+), tftp 127\.0\.0\.1:(\d+), dhcp off, iscsi 127\.0\.0\.1:(\d+)$/.exec(status);
    expect(m, status).not.toBeNull();
    const [http, tftp, iscsi] = [Number(m![1]), Number(m![2]), Number(m![3])];
    expect(http).toBe(port);
    const [health, tftpAnswer, iscsiUp] = await Promise.all([fetch(`http://127.0.0.1:${http}/healthz`), tftpFirstAnswer(tftp, 'undionly.kpxe'), tcpConnects(iscsi)]);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok' });
    expect([3, 6, 5]).toContain(tftpAnswer);
    expect(iscsiUp).toBe(true);
    // Nothing but watchdog pings before READY=1, and it came once.
    expect(r.messages.slice(0, ready.index).every((x) => x.text === 'WATCHDOG=1')).toBe(true);
    expect(r.messages.filter((x) => 'READY' in x.fields)).toHaveLength(1);

    // Watchdog: every WATCHDOG_USEC/2 = 200 ms.
    const firstPing = await r.waitFor('WATCHDOG', 2000, ready.index + 1);
    await r.waitFor('WATCHDOG', 2000, firstPing.index + 1);
    const pings = r.messages.filter((x) => x.text === 'WATCHDOG=1');
    expect(pings.length).toBeGreaterThanOrEqual(2);

    // SIGHUP: RELOADING=1 with the monotonic time of the reload, then READY=1 again.
    const marker = r.messages.length;
    const before = process.hrtime.bigint() / 1000n;
    child!.process.kill('SIGHUP');
    const reloading = await r.waitFor('RELOADING', 5000, marker);
    const readyAgain = await r.waitFor('READY', 5000, reloading.index + 1);
    const usec = BigInt(reloading.fields.MONOTONIC_USEC!);
    expect(usec > before && usec < process.hrtime.bigint() / 1000n).toBe(true);
    expect(readyAgain.fields.STATUS).toBe(status);
    expect((await fetch(`http://127.0.0.1:${http}/healthz`)).status).toBe(200);

    // SIGTERM: STOPPING=1 first, then a clean exit.
    child!.process.kill('SIGTERM');
    const stopping = await r.waitFor('STOPPING', 5000, readyAgain.index + 1);
    expect(stopping.text).toBe('STOPPING=1\nSTATUS=stopping');
    const exit = await child!.exited;
    expect(exit, child!.output()).toEqual({ code: 0, signal: null });
    r.poll();
    expect(r.messages.slice(stopping.index + 1).every((x) => x.text === 'WATCHDOG=1')).toBe(true);
    // The process never printed the socket's name or anything secret about it.
    expect(child!.output()).not.toContain(address);
  }, 60_000);

  it('at the instant READY=1 is sent, the HTTP, TFTP and iSCSI sockets are bound (in process, read from /proc/net)', async () => {
    const address = `@hiveboot-test/daemon-inproc/${process.pid}/${Date.now()}`;
    receiver = NotifyReceiver.bind(address);
    const real = systemdNotifier({ NOTIFY_SOCKET: address });
    let seen: { status: string; tcp: Set<number>; udp: Set<number> } | undefined;
    const notifier: ServiceNotifier = {
      ...real,
      ready(status) {
        // Synchronously, before the datagram leaves: what is listening right now.
        seen ??= { status, tcp: boundPorts('tcp', '0A'), udp: boundPorts('udp', '07') };
        return real.ready(status);
      },
    };
    const config = validateConfig({
      stateDir: join(dir, 'inproc-state'),
      http: { listen: '127.0.0.1', port: await freePort() },
      tftp: { listen: '127.0.0.1', port: 0 },
      iscsi: { listen: '127.0.0.1', port: 0 },
      dhcp: { mode: 'off' },
    });
    const daemon = await startDaemon(config, { logger: createLogger({ level: 'silent' }), notifier });
    try {
      expect(seen).toBeDefined();
      const m = /^serving http:\/\/127\.0\.0\.1:(\d+), tftp 127\.0\.0\.1:(\d+), dhcp off, iscsi 127\.0\.0\.1:(\d+)$/.exec(seen!.status);
      expect(m, seen!.status).not.toBeNull();
      expect(seen!.tcp.has(Number(m![1])), 'HTTP listening').toBe(true);
      expect(seen!.udp.has(Number(m![2])), 'TFTP bound').toBe(true);
      expect(seen!.tcp.has(Number(m![3])), 'iSCSI listening').toBe(true);
      expect((await receiver.waitFor('READY', 2000)).fields.STATUS).toBe(seen!.status);
    } finally {
      await daemon.stop();
      real.close();
    }
    expect((await receiver.waitFor('STOPPING', 2000)).text).toBe('STOPPING=1\nSTATUS=stopping');
  });

  it('a start that fails sends no READY=1 and exits non-zero', async () => {
    const address = `@hiveboot-test/daemon-fail/${process.pid}/${Date.now()}`;
    receiver = NotifyReceiver.bind(address);
    blocker = createServer();
    await new Promise<void>((r) => blocker!.listen(0, '127.0.0.1', r));
    const taken = (blocker.address() as { port: number }).port;
    child = serve(writeConfig('fail', taken), { NOTIFY_SOCKET: address });
    const exit = await child.exited;
    expect(exit.code, child.output()).not.toBe(0);
    expect(child.output()).toMatch(/EADDRINUSE/);
    receiver.poll();
    expect(receiver.messages.filter((x) => 'READY' in x.fields)).toEqual([]);
  }, 60_000);
});
