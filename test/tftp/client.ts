import { createHash } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { decode, encode, type TftpPacket } from '../../src/tftp/packet.js';

/**
 * A TFTP reader on a raw UDP socket, for what no packaged client does: windowsize, loss on purpose,
 * duplicate ACKs, silence, packets from a wrong TID. It follows RFC 1350/2347/7440 as a receiver:
 * locks onto the server's TID, ACKs each full window (or the last block), on a gap ACKs the last
 * block it has in order, and re-sends its last ACK when nothing arrives for a while.
 */

export interface RawGetOptions {
  port: number;
  file: string;
  mode?: string;
  /** Options for the RRQ, in order. */
  options?: [string, string | number][];
  /** Return true to lose this DATA packet (block is absolute, from 1; `seen` counts its arrivals). */
  drop?: (block: number, seen: number) => boolean;
  /** Send every ACK this many times (duplicates a network or a confused client can produce). */
  ackCopies?: number;
  /** After this many in-order blocks, go silent: no ACK ever again (0: not even the OACK's). */
  silentAfter?: number;
  /** Called once with the server's TID, when the first answer arrives. */
  onServerTid?: (tid: RemoteInfo) => void;
  /** Re-send the last ACK (or the RRQ) after this long without anything new (default 200 ms). */
  retryMs?: number;
  /** Give up after this long (default 20 s). */
  deadlineMs?: number;
}

export interface RawGetResult {
  data: Buffer;
  sha256: string;
  /** The OACK's options, or null if the server answered with DATA 1. */
  oack: Map<string, string> | null;
  /** An ERROR the server sent, if the transfer ended with one. */
  error: { code: number; message: string } | null;
  /** The first packet the server answered with. */
  first: TftpPacket['type'] | null;
  /** DATA packets received, duplicates included. */
  dataPackets: number;
  /** OACKs received, repeats included. */
  oackPackets: number;
  /** True when an in-order block arrived as wire block 0, i.e. the numbering wrapped past 65535. */
  wrapped: boolean;
  serverTid: number | null;
}

export function rawGet(opts: RawGetOptions): Promise<RawGetResult> {
  const socket = createSocket('udp4');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const seen = new Map<number, number>();
    const result: RawGetResult = { data: Buffer.alloc(0), sha256: '', oack: null, error: null, first: null, dataPackets: 0, oackPackets: 0, wrapped: false, serverTid: null };
    let server: RemoteInfo | null = null;
    let blksize = 512;
    let windowsize = 1;
    let next = 1; // absolute number of the block we want
    let inWindow = 0;
    let lastSent: Buffer = requestPacket(opts);
    let retry: NodeJS.Timeout | undefined;
    let finished = false;

    const deadline = setTimeout(() => finish(new Error(`rawGet ${opts.file}: no end after ${opts.deadlineMs ?? 20_000} ms (at block ${next})`)), opts.deadlineMs ?? 20_000);

    function finish(err?: Error) {
      if (finished) return;
      finished = true;
      clearTimeout(deadline);
      clearTimeout(retry);
      socket.close();
      if (err) return reject(err);
      result.data = Buffer.concat(chunks);
      result.sha256 = createHash('sha256').update(result.data).digest('hex');
      resolve(result);
    }

    function armRetry() {
      clearTimeout(retry);
      retry = setTimeout(() => {
        if (opts.silentAfter !== undefined && next - 1 >= opts.silentAfter) return;
        sendRaw(lastSent);
        armRetry();
      }, opts.retryMs ?? 200);
    }

    function sendRaw(buf: Buffer, then?: () => void) {
      const to = server ?? { address: '127.0.0.1', port: opts.port };
      socket.send(buf, to.port, to.address, () => then?.());
    }

    /** ACKs a block; `then` runs once every copy has left (closing earlier would drop them). */
    function ack(block: number, then?: () => void) {
      if (opts.silentAfter !== undefined && block >= opts.silentAfter) {
        clearTimeout(retry);
        return;
      }
      lastSent = encode({ type: 'ack', block: block & 0xffff });
      const copies = opts.ackCopies ?? 1;
      let left = copies;
      for (let i = 0; i < copies; i++) sendRaw(lastSent, () => --left === 0 && then?.());
      inWindow = 0;
      armRetry();
    }

    socket.on('message', (msg, from) => {
      if (finished) return;
      if (server && (from.port !== server.port || from.address !== server.address)) return;
      let p: TftpPacket;
      try {
        p = decode(msg);
      } catch (err) {
        return finish(err as Error);
      }
      if (!server) {
        server = from;
        result.serverTid = from.port;
        result.first = p.type;
        opts.onServerTid?.(from);
      }
      if (p.type === 'error') {
        result.error = { code: p.code, message: p.message };
        return finish();
      }
      if (p.type === 'oack') {
        result.oackPackets++;
        if (result.oack) return; // a repeated OACK: our ACK 0 was lost or late, the retry covers it
        result.oack = p.options;
        blksize = Number(p.options.get('blksize') ?? 512);
        windowsize = Number(p.options.get('windowsize') ?? 1);
        return ack(0);
      }
      if (p.type !== 'data') return;
      result.dataPackets++;
      const diff = (p.block - (next & 0xffff) + 0x10000) & 0xffff;
      const abs = next + (diff < 0x8000 ? diff : diff - 0x10000);
      const copies = (seen.get(abs) ?? 0) + 1;
      seen.set(abs, copies);
      if (opts.drop?.(abs, copies)) return;
      if (abs < next) return; // old: already have it
      if (abs > next) {
        // A gap: say at once how far we got, so the sender goes back (RFC 7440).
        return ack(next - 1);
      }
      if (p.block === 0) result.wrapped = true;
      chunks.push(Buffer.from(p.data));
      next++;
      inWindow++;
      const last = p.data.length < blksize;
      if (last) {
        clearTimeout(deadline);
        return ack(abs, () => finish());
      }
      if (inWindow >= windowsize) ack(abs);
    });

    socket.bind(0, '127.0.0.1', () => {
      // Room for a whole window of big blocks: loss here should be only the loss a test asks for.
      socket.setRecvBufferSize(4 * 1024 * 1024);
      sendRaw(lastSent);
      armRetry();
    });
  });
}

function requestPacket(opts: RawGetOptions): Buffer {
  const options = new Map((opts.options ?? []).map(([k, v]) => [k, String(v)]));
  return encode({ type: 'rrq', filename: opts.file, mode: (opts.mode ?? 'octet') as 'octet', options });
}

/** Sends one datagram from a fresh socket and returns the first answer (or null after waitMs). */
export async function sendAndListen(port: number, packet: Buffer, waitMs = 500): Promise<{ packet: TftpPacket; from: RemoteInfo } | null> {
  const socket: Socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  try {
    return await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(null), waitMs);
      socket.once('message', (msg, from) => {
        clearTimeout(timer);
        resolve({ packet: decode(msg), from });
      });
      socket.send(packet, port, '127.0.0.1');
    });
  } finally {
    socket.close();
  }
}
