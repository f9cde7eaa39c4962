import type { Logger } from 'pino';
import { AF_UNIX, errno, loadLibc, MSG_DONTWAIT, MSG_NOSIGNAL, SOCK_CLOEXEC, SOCK_DGRAM, sockaddrUn, type Libc } from '../net/libc.js';

/**
 * The service manager's notification protocol (sd_notify(3)), spoken without libsystemd: one
 * datagram of "KEY=value" lines per notification, sent to the AF_UNIX socket named by $NOTIFY_SOCKET
 * (a path, or "@name" in the abstract namespace). Node's dgram has no unix datagram sockets, so the
 * socket is made with libc through koffi (net/libc.ts). Without $NOTIFY_SOCKET (not started by
 * systemd, or Type= is not notify) every call does nothing.
 *
 * This module only speaks the protocol; when to say what is the composition root's decision.
 */

/** The variables systemd sets for a notify service; the caller reads them from its environment. */
export interface NotifyEnv {
  NOTIFY_SOCKET?: string;
  WATCHDOG_USEC?: string;
  WATCHDOG_PID?: string;
}

export interface ServiceNotifier {
  /** True when a service manager listens ($NOTIFY_SOCKET was set and usable). */
  readonly enabled: boolean;
  /** READY=1: start-up (or a reload) is complete; `status` is shown by `systemctl status`. */
  ready(status: string): boolean;
  /** RELOADING=1 with MONOTONIC_USEC (systemd >= 253 wants it); READY=1 must follow. */
  reloading(status: string): boolean;
  /** STOPPING=1: a graceful stop has begun. */
  stopping(status: string): boolean;
  /**
   * Sends WATCHDOG=1 every WATCHDOG_USEC/2 from a timer on the event loop, so a blocked loop stops
   * the pings and the service manager restarts the process. Only when the manager asked for pings
   * from this process (WATCHDOG_PID unset or ours). Returns the interval in ms, or undefined.
   */
  startWatchdog(): number | undefined;
  /** Stops the pings and closes the socket. */
  close(): void;
}

/** The ping interval the manager asks of process `pid` (half its WATCHDOG_USEC), in ms; undefined: none. */
export function watchdogIntervalMs(env: NotifyEnv, pid: number): number | undefined {
  if (!env.NOTIFY_SOCKET || !env.WATCHDOG_USEC || !/^\d+$/.test(env.WATCHDOG_USEC)) return undefined;
  if (env.WATCHDOG_PID !== undefined && env.WATCHDOG_PID !== String(pid)) return undefined;
  const usec = Number(env.WATCHDOG_USEC);
  if (usec <= 0) return undefined;
  return Math.max(1, Math.floor(usec / 2000));
}

/** One notification: KEY=value lines. A value is one line, so line breaks in a status become spaces. */
export function notifyMessage(fields: Record<string, string | number | bigint>): Buffer {
  return Buffer.from(
    Object.entries(fields)
      .map(([key, value]) => `${key}=${String(value).replace(/[\r\n]+/g, ' ')}`)
      .join('\n'),
  );
}

/** CLOCK_MONOTONIC in microseconds: libuv's hrtime reads the clock systemd compares MONOTONIC_USEC with. */
function monotonicUsec(): bigint {
  return process.hrtime.bigint() / 1000n;
}

const inert: ServiceNotifier = {
  enabled: false,
  ready: () => false,
  reloading: () => false,
  stopping: () => false,
  startWatchdog: () => undefined,
  close: () => {},
};

/**
 * A notifier for the service manager named in `env`, or an inert one. Sends never block: a datagram
 * the socket cannot take right now is dropped and reported (a blocked event loop would stop the
 * watchdog pings anyway).
 */
export function systemdNotifier(env: NotifyEnv, opts: { logger?: Logger; pid?: number } = {}): ServiceNotifier {
  // A copy: the caller may take the variables out of its environment (children must not inherit them).
  const vars: NotifyEnv = { NOTIFY_SOCKET: env.NOTIFY_SOCKET, WATCHDOG_USEC: env.WATCHDOG_USEC, WATCHDOG_PID: env.WATCHDOG_PID };
  const path = vars.NOTIFY_SOCKET;
  if (!path) return inert;
  const log = opts.logger;
  const pid = opts.pid ?? process.pid;
  let target: { addr: Buffer; len: number };
  let c: Libc;
  let fd: number;
  try {
    // Only a file system path or an abstract name; systemd >= 254 may also name a vsock: address.
    if (!path.startsWith('/') && !path.startsWith('@')) throw new Error('only a socket path or an @abstract name is supported');
    target = sockaddrUn(path);
    c = loadLibc();
    fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new Error(`socket(): ${c.strerror(errno())}`);
  } catch (err) {
    log?.warn({ notifySocket: path, err: (err as Error).message }, 'cannot talk to the service manager; not sending it notifications');
    return inert;
  }

  const reported = new Set<number>();
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  const send = (fields: Record<string, string | number | bigint>): boolean => {
    if (closed) return false;
    const message = notifyMessage(fields);
    if (c.sendto(fd, message, message.length, MSG_DONTWAIT | MSG_NOSIGNAL, target.addr, target.len) === message.length) return true;
    const e = errno();
    // Once per kind of failure: the watchdog would repeat it every few seconds.
    if (!reported.has(e)) {
      reported.add(e);
      log?.warn({ notifySocket: path, err: c.strerror(e), message: Object.keys(fields).join(',') }, 'could not notify the service manager');
    }
    return false;
  };

  return {
    enabled: true,
    ready: (status) => send({ READY: 1, STATUS: status }),
    reloading: (status) => send({ RELOADING: 1, MONOTONIC_USEC: monotonicUsec(), STATUS: status }),
    stopping: (status) => send({ STOPPING: 1, STATUS: status }),
    startWatchdog() {
      const interval = watchdogIntervalMs(vars, pid);
      if (interval === undefined || closed) return undefined;
      clearInterval(timer);
      send({ WATCHDOG: 1 });
      timer = setInterval(() => send({ WATCHDOG: 1 }), interval);
      // The pings must never be what keeps the process alive.
      timer.unref();
      log?.debug({ intervalMs: interval }, 'sending watchdog pings to the service manager');
      return interval;
    },
    close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      c.close(fd);
    },
  };
}
