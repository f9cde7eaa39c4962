import { createSocket, type RemoteInfo, type Socket, type SocketOptions } from 'node:dgram';
import { lookup } from 'node:dns';
import { isIP, isIPv4, isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import { DEFAULT_CACHE_FILE_MAX_BYTES, DEFAULT_CACHE_MAX_BYTES, FileError, FileStore, type FileErrorKind, type OpenedFile } from './files.js';
import { DEFAULT_BLKSIZE, MAX_WINDOWSIZE, negotiate } from './options.js';
import { decode, encode, ERROR_CODE, MAX_BLKSIZE, MIN_BLKSIZE, TftpParseError, type RequestPacket } from './packet.js';
import { Pump } from './pump.js';
import { Transfer, type Endpoint, type TransferOutcome, type TransferResult } from './transfer.js';

/**
 * The read-only TFTP server: listens for requests, admits them (read only, octet only, under the
 * transfer cap, for a file the FileStore will serve), negotiates options and hands each one to a
 * Transfer on its own socket. It reads no config: the daemon passes everything in, and learns of
 * every transfer's outcome through onTransfer and the counters.
 */

export interface TransferEvent {
  /** The client's address (an IPv4-mapped IPv6 address is given as plain IPv4). */
  ip: string;
  port: number;
  file: string;
  /** File bytes the client acknowledged. */
  bytes: number;
  /** The file's size, or null when it could not be opened. */
  size: number | null;
  blksize: number;
  windowsize: number;
  durationMs: number;
  outcome: TransferOutcome;
  /** Why it failed, as the client was told; null when complete. */
  reason: string | null;
}

export interface TftpServerOptions {
  /** Address to listen on ("0.0.0.0", "::", or one interface's address). */
  address: string;
  /** 69 in production; 0 picks a free port (see TftpServer.port). */
  port: number;
  /** The directory served (netboot/). */
  root: string;
  /** Transfers at once; more are refused with "server busy" (default 64). */
  maxTransfers?: number;
  /** First retransmission timeout, doubled on each retry (default 1000). */
  timeoutMs?: number;
  /** Retransmissions before a transfer is given up (default 5). */
  retries?: number;
  /** Largest blksize granted, 8–65464 (default 65464). */
  maxBlksize?: number;
  /** Largest windowsize granted, 1–65535 (default 64). */
  maxWindowsize?: number;
  /** Files up to this size are served from memory (default 4 MiB). */
  cacheFileMaxBytes?: number;
  /** Memory for cached files in all (default 64 MiB). */
  cacheMaxBytes?: number;
  /**
   * Transfers of files held in memory run on the data-plane thread (pump.ts) when the listening
   * address is IPv4 and the thread can start here; false keeps every transfer on dgram sockets of
   * the main thread (default true).
   */
  pump?: boolean;
  logger: Logger;
  onTransfer?: (event: TransferEvent) => void;
}

export const TFTP_DEFAULTS = {
  pump: true,
  maxTransfers: 64,
  timeoutMs: 1000,
  retries: 5,
  maxBlksize: MAX_BLKSIZE,
  maxWindowsize: 64,
  cacheFileMaxBytes: DEFAULT_CACHE_FILE_MAX_BYTES,
  cacheMaxBytes: DEFAULT_CACHE_MAX_BYTES,
} as const;

/** Plain numbers for metrics; the daemon reads them from a prom-client collect(). */
export interface TftpCounters {
  transfers: Record<TransferOutcome, number>;
  /** Payload bytes of every DATA packet sent, retransmissions included. */
  bytesSent: number;
  /** DATA packets sent again after a timeout or a go-back. */
  retransmits: number;
  /** Packets that could not be decoded, at the listening port or on a transfer's port. */
  malformed: number;
  /** Packets on a transfer's port from another address or port (answered with ERROR 5). */
  wrongTid: number;
  /** Transfers running now. */
  active: number;
}

/** The TFTP error code a client sees for each reason a file cannot be served. */
const FILE_ERROR_CODE: Record<FileErrorKind, number> = {
  'not-found': ERROR_CODE.fileNotFound,
  refused: ERROR_CODE.accessViolation,
  unreadable: ERROR_CODE.notDefined,
};

/** A running transfer, on a dgram socket of this thread or on the data-plane thread. */
interface RunningTransfer {
  readonly heardFromPeer: boolean;
  abort(reason: string): void;
  closed(): Promise<void>;
}

interface PeerEntry {
  file: string;
  /** Null while the file is being opened. */
  transfer: RunningTransfer | null;
}

export class TftpServer {
  private readonly files: FileStore;
  private readonly log: Logger;
  private readonly cfg: Required<Omit<TftpServerOptions, 'onTransfer'>>;
  private socket: Socket | undefined;
  /** Admitted requests (opening or transferring), keyed by the client's ip:port. */
  private readonly peers = new Map<string, PeerEntry>();
  private readonly transfers = new Set<RunningTransfer>();
  private pump: Pump | undefined;
  private pumpStarting: Promise<void> | undefined;
  /** Requests still being admitted (opening their file): stop() waits for them. */
  private readonly admitting = new Set<Promise<void>>();
  private admitted = 0;
  private stopping = false;
  private readonly stats: Omit<TftpCounters, 'active'> = {
    transfers: { complete: 0, error: 0, timeout: 0 },
    bytesSent: 0,
    retransmits: 0,
    malformed: 0,
    wrongTid: 0,
  };

  constructor(private readonly opts: TftpServerOptions) {
    this.cfg = { ...TFTP_DEFAULTS, ...withoutUndefined(opts) } as typeof this.cfg;
    const { maxTransfers, timeoutMs, retries, maxBlksize, maxWindowsize } = this.cfg;
    checkRange('maxTransfers', maxTransfers, 1, 100_000);
    checkRange('timeoutMs', timeoutMs, 1, 255_000);
    checkRange('retries', retries, 0, 100);
    checkRange('maxBlksize', maxBlksize, MIN_BLKSIZE, MAX_BLKSIZE);
    checkRange('maxWindowsize', maxWindowsize, 1, MAX_WINDOWSIZE);
    this.files = new FileStore({ root: opts.root, cacheFileMaxBytes: this.cfg.cacheFileMaxBytes, cacheMaxBytes: this.cfg.cacheMaxBytes });
    this.log = opts.logger.child({ component: 'tftp' });
  }

  /** The port bound by start() (useful with port 0). */
  get port(): number {
    if (!this.socket) throw new Error('the TFTP server is not started');
    return this.socket.address().port;
  }

  /** Resolves once the data-plane thread runs, or could not start (then dataPlane stays 'sockets'). */
  get dataPlaneReady(): Promise<void> {
    return this.pumpStarting ?? Promise.resolve();
  }

  /** Where transfers of files held in memory run: the data-plane thread, or sockets of this thread. */
  get dataPlane(): 'thread' | 'sockets' {
    return this.pump?.available ? 'thread' : 'sockets';
  }

  get counters(): TftpCounters {
    const p = this.pump?.counters;
    return {
      ...this.stats,
      bytesSent: this.stats.bytesSent + (p?.bytesSent ?? 0),
      retransmits: this.stats.retransmits + (p?.retransmits ?? 0),
      malformed: this.stats.malformed + (p?.malformed ?? 0),
      wrongTid: this.stats.wrongTid + (p?.wrongTid ?? 0),
      transfers: { ...this.stats.transfers },
      active: this.transfers.size,
    };
  }

  async start(): Promise<void> {
    if (this.socket) throw new Error('the TFTP server is already started');
    const socket = await bindSocket(this.cfg.address, this.cfg.port);
    socket.on('message', (msg, rinfo) => this.onRequest(msg, rinfo));
    socket.on('error', (err) => this.log.error({ err: err.message }, 'TFTP listening socket error'));
    this.socket = socket;
    this.stopping = false;
    // The thread starts beside the server, not before it: the daemon is up (and serving TFTP on
    // sockets of this thread) without waiting for it, and transfers move to it once it runs.
    if (this.cfg.pump && isIPv4(this.cfg.address)) {
      this.pumpStarting = Pump.start({ strays: this.log.isLevelEnabled('debug') }).then(
        async (pump) => {
          if (this.stopping) return pump.stop('server shutting down');
          this.pump = pump;
          this.log.info('TFTP: data-plane thread running');
        },
        (err: Error) => {
          this.log.warn({ err: err.message }, 'TFTP: data-plane thread unavailable, every transfer runs on the main thread');
        },
      );
    }
    this.log.info({ address: this.cfg.address, port: this.port, root: this.opts.root }, 'TFTP server listening');
  }

  /** Stops listening, ends every transfer (the client is told), and resolves when all sockets are closed. */
  async stop(): Promise<void> {
    this.stopping = true;
    const socket = this.socket;
    this.socket = undefined;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
    await Promise.allSettled([...this.admitting]);
    const running = [...this.transfers];
    for (const t of running) t.abort('server shutting down');
    // The pump ends its own transfers (the abort above only reached it as a message) and its thread;
    // one still starting stops itself once it has started.
    await this.pumpStarting;
    this.pumpStarting = undefined;
    const pump = this.pump;
    this.pump = undefined;
    await pump?.stop('server shutting down');
    await Promise.all(running.map((t) => t.closed()));
  }

  private onRequest(msg: Buffer, from: RemoteInfo): void {
    let packet;
    try {
      packet = decode(msg);
    } catch (err) {
      if (!(err instanceof TftpParseError)) throw err;
      // No answer to what we cannot parse: a spoofed two-byte packet must not make us send more.
      this.stats.malformed++;
      this.log.debug({ ip: from.address, port: from.port, reason: err.message }, 'TFTP: malformed packet ignored');
      return;
    }
    const startedAt = performance.now();
    if (packet.type === 'wrq') {
      this.refuse(from, packet.filename, startedAt, ERROR_CODE.accessViolation, 'this TFTP server is read-only: writes are refused');
    } else if (packet.type === 'rrq') {
      const admitting = this.read(packet, from, startedAt)
        .catch((err: Error) => {
          this.log.error({ err: err.message, ip: from.address, file: packet.filename }, 'TFTP: request failed');
        })
        .finally(() => this.admitting.delete(admitting));
      this.admitting.add(admitting);
    }
    // DATA, ACK, OACK and ERROR belong on a transfer's own port: at this one they are ignored.
  }

  private async read(req: RequestPacket, from: RemoteInfo, startedAt: number): Promise<void> {
    const key = `${from.address}:${from.port}`;
    const existing = this.peers.get(key);
    if (existing && existing.file === req.filename && !existing.transfer?.heardFromPeer) {
      // The client repeated its request before our first answer reached it: that answer is on its way.
      return;
    }
    existing?.transfer?.abort('the client sent a new request from the same port');

    if (req.mode !== 'octet') {
      return this.refuse(from, req.filename, startedAt, ERROR_CODE.illegalOperation, `only octet (binary) mode is served, not ${req.mode}`);
    }
    // Transfers the data-plane thread has ended (their client told) count as free already.
    if (this.admitted - (this.pump?.endedUnreported ?? 0) >= this.cfg.maxTransfers) {
      return this.refuse(from, req.filename, startedAt, ERROR_CODE.notDefined, `server busy (${this.cfg.maxTransfers} transfers running), try again`);
    }

    const entry: PeerEntry = { file: req.filename, transfer: null };
    this.peers.set(key, entry);
    this.admitted++;
    const release = () => {
      this.admitted--;
      if (this.peers.get(key) === entry) this.peers.delete(key);
    };

    let file: OpenedFile;
    try {
      file = await this.files.open(req.filename);
    } catch (err) {
      release();
      if (!(err instanceof FileError)) throw err;
      return this.refuse(from, req.filename, startedAt, FILE_ERROR_CODE[err.kind], err.message);
    }

    const params = negotiate(req.options, file.size, this.cfg);
    const peer = { address: from.address, port: from.port };
    const hooks = {
      stray: (stranger: Endpoint, kind: 'malformed' | 'wrong-tid', detail: string) => {
        if (kind === 'malformed') this.stats.malformed++;
        else this.stats.wrongTid++;
        this.log.debug({ ip: stranger.address, port: stranger.port, file: file.name, detail }, `TFTP: stray packet (${kind})`);
      },
      done: (result: TransferResult) => {
        this.transfers.delete(transfer);
        release();
        this.report({ from, file: file.name, size: file.size, startedAt, blksize: params.blksize, windowsize: params.windowsize, ...result });
      },
    };
    const settings = {
      blksize: params.blksize,
      windowsize: params.windowsize,
      timeoutMs: params.timeoutMs ?? this.cfg.timeoutMs,
      retries: this.cfg.retries,
    };
    // The whole file in memory: a transfer for the data-plane thread (IPv4 only, like its sockets).
    const data = file.fromMemory && this.pump?.available && isIPv4(from.address) ? file.peek(0, file.size) : undefined;
    let transfer: RunningTransfer;
    let start = () => undefined as void;
    if (data && this.pump) {
      let fd: number;
      try {
        if (this.stopping) throw new Error('server shutting down');
        fd = this.pump.open(this.cfg.address);
      } catch (err) {
        release();
        await file.close();
        return this.refuse(from, req.filename, startedAt, ERROR_CODE.notDefined, (err as Error).message, file.size);
      }
      transfer = this.pump.run(
        { fd, peer, name: file.name, data, oack: params.oack.size > 0 ? [...params.oack] : null, ...settings },
        { stray: hooks.stray, done: hooks.done },
      );
      // The thread reads the shared bytes from now on; this side has nothing more to read.
      void file.close().catch(() => undefined);
    } else {
      let socket: Socket;
      try {
        if (this.stopping) throw new Error('server shutting down');
        socket = await bindSocket(this.cfg.address, 0);
      } catch (err) {
        release();
        await file.close();
        return this.refuse(from, req.filename, startedAt, ERROR_CODE.notDefined, (err as Error).message, file.size);
      }
      const t = new Transfer({
        socket,
        peer,
        file,
        oack: params.oack.size > 0 ? params.oack : null,
        ...settings,
        hooks: {
          ...hooks,
          dataSent: (bytes, retransmit) => {
            this.stats.bytesSent += bytes;
            if (retransmit) this.stats.retransmits++;
          },
        },
      });
      transfer = t;
      start = () => t.start();
    }
    entry.transfer = transfer;
    this.transfers.add(transfer);
    start();
    this.log.debug(
      { ip: from.address, port: from.port, file: file.name, size: file.size, fromMemory: file.fromMemory, pump: data !== undefined, options: Object.fromEntries(params.oack) },
      'TFTP: transfer starting',
    );
  }

  /** Answers a request with an ERROR from the listening port, and reports it like any transfer. */
  private refuse(from: RemoteInfo, file: string, startedAt: number, code: number, message: string, size: number | null = null): void {
    this.socket?.send(encode({ type: 'error', code, message }), from.port, from.address);
    this.report({ from, file, size, startedAt, blksize: DEFAULT_BLKSIZE, windowsize: 1, outcome: 'error', reason: message, bytes: 0 });
  }

  private report(r: TransferResult & { from: RemoteInfo; file: string; size: number | null; startedAt: number; blksize: number; windowsize: number }): void {
    this.stats.transfers[r.outcome]++;
    const event: TransferEvent = {
      ip: plainAddress(r.from.address),
      port: r.from.port,
      file: r.file,
      bytes: r.bytes,
      size: r.size,
      blksize: r.blksize,
      windowsize: r.windowsize,
      durationMs: Math.round(performance.now() - r.startedAt),
      outcome: r.outcome,
      reason: r.reason,
    };
    this.log[r.outcome === 'timeout' ? 'warn' : 'info']({ tftp: event }, `TFTP ${r.file}: ${r.outcome}${r.reason ? ` (${r.reason})` : ''}`);
    try {
      this.opts.onTransfer?.(event);
    } catch (err) {
      // The listener's failure (say, the timeline write) must not take the server down.
      this.log.error({ err: (err as Error).message }, 'TFTP: onTransfer listener failed');
    }
  }
}

/**
 * dgram passes the address of every send through its lookup function; ours are always literal IPs
 * (a client's source address), which dns.lookup would only hand back on the next tick.
 */
const literalLookup: NonNullable<SocketOptions['lookup']> = (hostname, options, callback) => {
  const family = isIP(hostname);
  if (family) callback(null, hostname, family);
  else lookup(hostname, options, callback);
};

function bindSocket(address: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type: isIPv6(address) ? 'udp6' : 'udp4', lookup: literalLookup });
    socket.once('error', reject);
    socket.bind({ address, port, exclusive: true }, () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

/** "::ffff:192.0.2.7" (an IPv4 client on a dual-stack socket) as "192.0.2.7": how DHCP knows it. */
function plainAddress(address: string): string {
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : '';
  return isIPv4(v4) ? v4 : address;
}

function checkRange(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) throw new RangeError(`tftp ${name} must be an integer in ${min}–${max}, not ${value}`);
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
