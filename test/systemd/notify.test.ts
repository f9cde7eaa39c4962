// sd_notify as hiveboot speaks it, against a real AF_UNIX datagram socket this test binds (a path
// and an abstract name), read the way systemd reads it: one datagram per notification.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sockaddrUn } from '../../src/net/libc.js';
import { notifyMessage, systemdNotifier, watchdogIntervalMs, type ServiceNotifier } from '../../src/systemd/notify.js';
import { NotifyReceiver } from './notify-receiver.js';

const linux = process.platform === 'linux';

function recordingLogger(): { logger: Logger; warnings: { obj: Record<string, unknown>; msg: string }[] } {
  const warnings: { obj: Record<string, unknown>; msg: string }[] = [];
  const logger = { warn: (obj: Record<string, unknown>, msg: string) => warnings.push({ obj, msg }), debug: () => {} } as unknown as Logger;
  return { logger, warnings };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('sockaddrUn', () => {
  it('encodes a path with its NUL and an abstract name with a leading NUL and no trailing one', () => {
    const p = sockaddrUn('/run/systemd/notify');
    expect(p.len).toBe(2 + '/run/systemd/notify'.length + 1);
    expect(p.addr.readUInt16LE(0)).toBe(1);
    expect(p.addr.subarray(2, p.len).toString('latin1')).toBe('/run/systemd/notify\0');
    const a = sockaddrUn('@hb/notify');
    expect(a.len).toBe(2 + 1 + 'hb/notify'.length);
    expect([...a.addr.subarray(2, a.len)]).toEqual([0, ...Buffer.from('hb/notify')]);
  });

  it('refuses what does not fit sun_path', () => {
    expect(() => sockaddrUn(`/${'x'.repeat(106)}`)).not.toThrow();
    expect(() => sockaddrUn(`/${'x'.repeat(107)}`)).toThrow(RangeError);
    expect(() => sockaddrUn(`@${'x'.repeat(107)}`)).not.toThrow();
    expect(() => sockaddrUn(`@${'x'.repeat(108)}`)).toThrow(RangeError);
  });
});

describe('the protocol, without a socket', () => {
  it('is inert without NOTIFY_SOCKET', () => {
    const { logger, warnings } = recordingLogger();
    const n = systemdNotifier({ WATCHDOG_USEC: '1000000' }, { logger });
    expect(n.enabled).toBe(false);
    expect([n.ready('x'), n.reloading('x'), n.stopping('x')]).toEqual([false, false, false]);
    expect(n.startWatchdog()).toBeUndefined();
    n.close();
    expect(warnings).toEqual([]);
  });

  it('is inert, with one warning, for an address it cannot use', () => {
    const { logger, warnings } = recordingLogger();
    const n = systemdNotifier({ NOTIFY_SOCKET: 'vsock:2:1234' }, { logger });
    expect(n.enabled).toBe(false);
    expect(n.ready('x')).toBe(false);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.obj.notifySocket).toBe('vsock:2:1234');
  });

  it('pings at half WATCHDOG_USEC, only when WATCHDOG_PID is unset or ours', () => {
    const sock = { NOTIFY_SOCKET: '@x' };
    expect(watchdogIntervalMs({ ...sock, WATCHDOG_USEC: '30000000' }, 42)).toBe(15_000);
    expect(watchdogIntervalMs({ ...sock, WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }, 42)).toBe(15_000);
    expect(watchdogIntervalMs({ ...sock, WATCHDOG_USEC: '30000000', WATCHDOG_PID: '43' }, 42)).toBeUndefined();
    expect(watchdogIntervalMs({ ...sock, WATCHDOG_USEC: '1000' }, 42)).toBe(1);
    for (const bad of ['0', '', '-5', '1e6', '30s']) expect(watchdogIntervalMs({ ...sock, WATCHDOG_USEC: bad }, 42)).toBeUndefined();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' }, 42)).toBeUndefined();
  });

  it('keeps each value on its line', () => {
    expect(notifyMessage({ READY: 1, STATUS: 'a\nREADY=0\r\nb' }).toString()).toBe('READY=1\nSTATUS=a READY=0 b');
  });
});

describe.skipIf(!linux)('the protocol over a real datagram socket', () => {
  let dir: string;
  const receivers: NotifyReceiver[] = [];
  const notifiers: ServiceNotifier[] = [];
  const open = (address: string) => {
    const r = NotifyReceiver.bind(address);
    receivers.push(r);
    return r;
  };
  const notifier = (...args: Parameters<typeof systemdNotifier>) => {
    const n = systemdNotifier(...args);
    notifiers.push(n);
    return n;
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'hb-notify-'));
  });
  afterEach(() => {
    for (const n of notifiers.splice(0)) n.close();
    for (const r of receivers.splice(0)) r.close();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const kind of ['path', 'abstract'] as const) {
    it(`READY, RELOADING with MONOTONIC_USEC, STOPPING reach a ${kind} socket, one datagram each`, async () => {
      const address = kind === 'path' ? join(dir, 'notify') : `@hiveboot-test/${process.pid}/${Math.random().toString(36).slice(2)}`;
      const r = open(address);
      const n = notifier({ NOTIFY_SOCKET: address });
      expect(n.enabled).toBe(true);
      expect(n.ready('serving http://127.0.0.1:8080')).toBe(true);
      const before = process.hrtime.bigint() / 1000n;
      expect(n.reloading('reloading boot templates')).toBe(true);
      const after = process.hrtime.bigint() / 1000n;
      expect(n.ready('serving again')).toBe(true);
      expect(n.stopping('stopping')).toBe(true);
      await r.waitFor('STOPPING', 2000);
      expect(r.messages.map((m) => m.text)).toEqual([
        'READY=1\nSTATUS=serving http://127.0.0.1:8080',
        `RELOADING=1\nMONOTONIC_USEC=${r.messages[1]!.fields.MONOTONIC_USEC}\nSTATUS=reloading boot templates`,
        'READY=1\nSTATUS=serving again',
        'STOPPING=1\nSTATUS=stopping',
      ]);
      // CLOCK_MONOTONIC, the clock systemd compares it with: taken between our two readings of it.
      const usec = BigInt(r.messages[1]!.fields.MONOTONIC_USEC!);
      expect(usec >= before && usec <= after).toBe(true);
    });
  }

  it('pings the watchdog every WATCHDOG_USEC/2 from the event loop: a blocked loop sends nothing', async () => {
    const address = `@hiveboot-test/${process.pid}/wd`;
    const r = open(address);
    const n = notifier({ NOTIFY_SOCKET: address, WATCHDOG_USEC: '100000' });
    expect(n.startWatchdog()).toBe(50);
    await r.waitFor('WATCHDOG', 1000, 5);
    const pings = r.messages.filter((m) => m.text === 'WATCHDOG=1');
    expect(pings.length).toBe(r.messages.length);
    const gaps = pings.slice(1).map((p, i) => p.at - pings[i]!.at);
    const median = [...gaps].sort((a, b) => a - b)[Math.floor(gaps.length / 2)]!;
    expect(median).toBeGreaterThan(35);
    expect(median).toBeLessThan(90);

    // Block the loop for 8 intervals: the timer cannot run, so nothing may be sent meanwhile.
    await sleep(0);
    const count = () => {
      r.poll();
      return r.messages.length;
    };
    const before = count();
    const until = performance.now() + 400;
    while (performance.now() < until) {
      /* a stuck event loop */
    }
    expect(count()).toBe(before);
    // Once the loop runs again, so do the pings.
    await r.waitFor('WATCHDOG', 1000, before);

    n.close();
    await sleep(120);
    const final = count();
    await sleep(150);
    expect(count()).toBe(final);
  });

  it('does not ping for another process (WATCHDOG_PID), and pings for its own', async () => {
    const address = `@hiveboot-test/${process.pid}/wdpid`;
    const r = open(address);
    const other = notifier({ NOTIFY_SOCKET: address, WATCHDOG_USEC: '20000', WATCHDOG_PID: String(process.pid + 1) });
    expect(other.startWatchdog()).toBeUndefined();
    await sleep(60);
    expect(r.messages).toEqual([]);
    const ours = notifier({ NOTIFY_SOCKET: address, WATCHDOG_USEC: '20000', WATCHDOG_PID: String(process.pid) });
    expect(ours.startWatchdog()).toBe(10);
    await r.waitFor('WATCHDOG', 1000, 2);
  });

  it('reports a socket nobody reads once, and never throws', () => {
    const address = join(dir, 'gone');
    open(address).close();
    const { logger, warnings } = recordingLogger();
    const n = notifier({ NOTIFY_SOCKET: address }, { logger });
    expect(n.ready('x')).toBe(false);
    expect(n.stopping('y')).toBe(false);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.obj).toMatchObject({ notifySocket: address, message: 'READY,STATUS' });
    expect(String(warnings[0]!.obj.err)).toMatch(/refused|No such file/i);
  });
});
