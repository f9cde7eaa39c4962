import dgram from 'node:dgram';
import { lookup } from 'node:dns';
import { isIP } from 'node:net';
import koffi from 'koffi';

/**
 * A UDP socket bound to 0.0.0.0:<port> and pinned to one network interface (SO_BINDTODEVICE).
 *
 * Why: DHCP requests are broadcasts, which only a socket bound to 0.0.0.0 receives — and such a
 * socket receives them from every interface and cannot tell which one a packet came in on (Node's
 * dgram has no IP_PKTINFO). Pinning one socket per interface answers both: each socket hears only
 * its own interface, and its broadcast replies leave through that interface. Node cannot set the
 * option itself, so the socket is made with libc through koffi and handed to dgram by descriptor.
 */
const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
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

interface Libc {
  socket: (domain: number, type: number, protocol: number) => number;
  setsockopt: (fd: number, level: number, name: number, value: Buffer, len: number) => number;
  bind: (fd: number, addr: Buffer, len: number) => number;
  close: (fd: number) => number;
  sendto: (fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrLen: number) => number;
  strerror: (errnum: number) => string;
  errno: () => number;
}

let libc: Libc | undefined;
function load(): Libc {
  if (libc) return libc;
  const lib = koffi.load('libc.so.6');
  const errnoLocation = lib.func('int *__errno_location(void)');
  libc = {
    socket: lib.func('int socket(int, int, int)'),
    setsockopt: lib.func('int setsockopt(int, int, int, const void *, uint32_t)'),
    bind: lib.func('int bind(int, const void *, uint32_t)'),
    close: lib.func('int close(int)'),
    sendto: lib.func('intptr_t sendto(int, const void *, uintptr_t, int, const void *, uint32_t)'),
    strerror: lib.func('const char *strerror(int)'),
    errno: () => koffi.decode(errnoLocation(), 'int') as number,
  };
  return libc;
}

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
const MSG_DONTWAIT = 0x40;
const EAGAIN = 11;
const ENOBUFS = 105;

function sockaddr(address: string, port: number): Buffer {
  const key = `${address}:${port}`;
  let sa = addresses.get(key);
  if (!sa) {
    sa = Buffer.alloc(16);
    sa.writeUInt16LE(AF_INET, 0);
    sa.writeUInt16BE(port, 2);
    address.split('.').forEach((octet, i) => sa!.writeUInt8(Number(octet), 4 + i));
    // Clients' own addresses come and go: keep the table small.
    if (addresses.size > 1024) addresses.clear();
    addresses.set(key, sa);
  }
  return sa;
}

/**
 * Sends one datagram from a socket openDeviceSocket made, with sendto(2) straight on its descriptor.
 * dgram.send costs several times the system call (argument checks, a lookup, a request object that
 * async hooks see) — a reply is mostly that cost. When the kernel cannot take the datagram right now,
 * or for any other socket, dgram queues it as usual; a failure surfaces as the socket's 'error'.
 */
export function sendDatagram(socket: dgram.Socket, data: Buffer, port: number, address: string): void {
  const fd = descriptors.get(socket);
  if (fd !== undefined && isIP(address) === 4) {
    const c = load();
    if (c.sendto(fd, data, data.length, MSG_DONTWAIT, sockaddr(address, port), 16) >= 0) return;
    const err = c.errno();
    if (err !== EAGAIN && err !== ENOBUFS) {
      socket.emit('error', new Error(`sendto ${address}:${port}: ${c.strerror(err)}`));
      return;
    }
  }
  socket.send(data, port, address);
}

/** Opens 0.0.0.0:port pinned to `device` (or unpinned if device is undefined), broadcast allowed. */
export async function openDeviceSocket(port: number, device: string | undefined): Promise<dgram.Socket> {
  const c = load();
  const fd = c.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new SocketSetupError(`socket(): ${c.strerror(c.errno())}`);
  const fail = (what: string): never => {
    const msg = c.strerror(c.errno());
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
  const addr = Buffer.alloc(16);
  addr.writeUInt16LE(AF_INET, 0);
  addr.writeUInt16BE(port, 2);
  if (c.bind(fd, addr, 16) !== 0) fail(`bind 0.0.0.0:${port}${device ? ` on ${device}` : ''}`);
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
