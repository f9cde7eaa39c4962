import dgram from 'node:dgram';
import { lookup } from 'node:dns';
import { isIP } from 'node:net';
import { AF_INET, errno, errorText, loadLibc, SOCK_CLOEXEC, SOCK_DGRAM, SOCKADDR_IN_SIZE, sockaddrIn } from '../net/libc.js';
import { SendBatch } from '../net/send-batch.js';
import { intToIp, parseIpv4 } from './addresses.js';

/**
 * A UDP socket bound to 0.0.0.0:<port> and pinned to one network interface (SO_BINDTODEVICE).
 *
 * Why: DHCP requests are broadcasts, which only a socket bound to 0.0.0.0 receives — and such a
 * socket receives them from every interface and cannot tell which one a packet came in on (Node's
 * dgram has no IP_PKTINFO). Pinning one socket per interface answers both: each socket hears only
 * its own interface, and its broadcast replies leave through that interface. Node cannot set the
 * option itself, so the socket is made with libc through koffi and handed to dgram by descriptor.
 */
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SO_BROADCAST = 6;
const SO_BINDTODEVICE = 25;
const SO_RCVBUF = 8;
const SO_RCVBUFFORCE = 33;
/**
 * Room for a boot storm's worth of requests while the event loop is busy (a timeline flush): a
 * queue that overflows drops DISCOVERs, and PXE firmware only asks again 4 s later.
 */
const RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;

export class SocketSetupError extends Error {}

/**
 * dgram passes the destination of every send through its lookup function; ours are always literal
 * addresses (a broadcast, a relay, a client), which dns.lookup would only hand back on the next tick.
 */
const literalLookup: NonNullable<dgram.SocketOptions['lookup']> = (hostname, options, callback) => {
  const family = isIP(hostname);
  if (family) callback(null, hostname, family);
  else lookup(hostname, options, callback);
};

/** The descriptor under each socket openDeviceSocket made, for ReplySender. */
const descriptors = new WeakMap<dgram.Socket, number>();

/**
 * Replies of a server's sockets, sent in batches: every datagram queued while the sockets are being
 * read goes out with one sendmmsg(2) per socket right after (setImmediate runs once libuv has read
 * what was waiting). At one request at a time that costs a turn of the event loop, a few
 * microseconds; in a storm it spares the server a system call and a client wake-up per reply (see
 * net/send-batch.ts). Sockets not made by openDeviceSocket, destinations that are not IPv4
 * literals, and whatever the kernel does not take at once go through dgram's own send.
 */
export class ReplySender {
  private readonly batches = new Map<dgram.Socket, SendBatch | null>();
  private scheduled: NodeJS.Immediate | undefined;

  send(socket: dgram.Socket, data: Buffer, port: number, address: string): void {
    const batch = this.batchOf(socket);
    const ip = batch ? parseIpv4(address) : -1;
    if (!batch || ip < 0 || !batch.add(data, ip, port)) {
      socket.send(data, port, address);
      return;
    }
    if (batch.full) this.flushOne(socket, batch);
    else this.scheduled ??= setImmediate(() => this.flush());
  }

  /** Sends everything queued now (also before a socket closes). */
  flush(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    for (const [socket, batch] of this.batches) if (batch && batch.size > 0) this.flushOne(socket, batch);
  }

  /** Frees the batches (after the sockets closed). */
  close(): void {
    this.flush();
    for (const batch of this.batches.values()) batch?.close();
    this.batches.clear();
  }

  private batchOf(socket: dgram.Socket): SendBatch | null {
    let batch = this.batches.get(socket);
    if (batch === undefined) {
      const fd = descriptors.get(socket);
      batch = fd === undefined ? null : new SendBatch(fd);
      this.batches.set(socket, batch);
    }
    return batch;
  }

  private flushOne(socket: dgram.Socket, batch: SendBatch): void {
    const { unsent, error } = batch.flush();
    if (error !== undefined) socket.emit('error', new Error(`sendmmsg: ${loadLibc().strerror(error)}`));
    // The kernel's buffer was full (or one datagram failed): dgram queues the rest, or reports them.
    for (const u of unsent) socket.send(u.data, u.port, intToIp(u.address));
  }
}

/** Opens 0.0.0.0:port pinned to `device` (or unpinned if device is undefined), broadcast allowed. */
export async function openDeviceSocket(port: number, device: string | undefined): Promise<dgram.Socket> {
  const c = loadLibc();
  const fd = c.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new SocketSetupError(errorText(c, 'socket()'));
  const fail = (what: string): never => {
    const msg = c.strerror(errno());
    c.close(fd);
    throw new SocketSetupError(`${what}: ${msg}`);
  };
  const one = Buffer.alloc(4);
  one.writeInt32LE(1);
  // SO_REUSEADDR lets one socket per interface share port 67.
  if (c.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4) !== 0) fail('SO_REUSEADDR');
  if (c.setsockopt(fd, SOL_SOCKET, SO_BROADCAST, one, 4) !== 0) fail('SO_BROADCAST');
  const size = Buffer.alloc(4);
  size.writeInt32LE(RECEIVE_BUFFER_BYTES);
  // Past net.core.rmem_max only with CAP_NET_ADMIN (FORCE); otherwise as much as the system allows.
  if (c.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, size, 4) !== 0) c.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, size, 4);
  if (device !== undefined) {
    const name = Buffer.from(`${device}\0`);
    if (c.setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, name.length) !== 0) fail(`SO_BINDTODEVICE ${device} (needs CAP_NET_RAW)`);
  }
  if (c.bind(fd, sockaddrIn('0.0.0.0', port), SOCKADDR_IN_SIZE) !== 0) fail(`bind 0.0.0.0:${port}${device ? ` on ${device}` : ''}`);
  const socket = dgram.createSocket({ type: 'udp4', lookup: literalLookup });
  descriptors.set(socket, fd);
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ fd }, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  return socket;
}
