import dgram from 'node:dgram';
import { lookup } from 'node:dns';
import { isIP } from 'node:net';
import { AF_INET, EAGAIN, ENOBUFS, errno, errorText, loadLibc, MSG_DONTWAIT, SOCK_CLOEXEC, SOCK_DGRAM, SOCKADDR_IN_SIZE, sockaddrIn } from '../net/libc.js';

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

/** The descriptor under each socket openDeviceSocket made, for sendDatagram. */
const descriptors = new WeakMap<dgram.Socket, number>();
/** sockaddr_in per destination: a server replies to few (the broadcast address, its relays). */
const addresses = new Map<string, Buffer>();

function sockaddrOf(address: string, port: number): Buffer {
  const key = `${address}:${port}`;
  let sa = addresses.get(key);
  if (!sa) {
    // Clients' own addresses come and go: keep the table small.
    if (addresses.size > 1024) addresses.clear();
    addresses.set(key, (sa = sockaddrIn(address, port)));
  }
  return sa;
}

/**
 * Sends one datagram from a socket openDeviceSocket made, with sendto(2) straight on its descriptor.
 * dgram.send costs several times the system call (argument checks, a lookup, a request object) —
 * a reply is mostly that cost. When the kernel cannot take the datagram right now, or for any other
 * socket, dgram queues it as usual; a failure surfaces as the socket's 'error'.
 */
export function sendDatagram(socket: dgram.Socket, data: Buffer, port: number, address: string): void {
  const fd = descriptors.get(socket);
  if (fd !== undefined && isIP(address) === 4) {
    const c = loadLibc();
    if (c.sendto(fd, data, data.length, MSG_DONTWAIT, sockaddrOf(address, port), SOCKADDR_IN_SIZE) >= 0) return;
    const err = errno();
    if (err !== EAGAIN && err !== ENOBUFS) {
      socket.emit('error', new Error(`sendto ${address}:${port}: ${c.strerror(err)}`));
      return;
    }
  }
  socket.send(data, port, address);
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
