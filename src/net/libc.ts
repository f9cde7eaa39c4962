import koffi from 'koffi';

/**
 * The few libc calls hiveboot's UDP servers make themselves (Linux): sockets with options Node
 * cannot set (DHCP's SO_BINDTODEVICE), sendto, epoll and an eventfd. Node's dgram costs a trip
 * through libuv, a callback and several objects per datagram in each direction; for TFTP's DATA/ACK
 * traffic that is most of the server's work, so transfers of files held in memory are driven with
 * these calls from a thread of their own (tftp/pump-worker.ts), and DHCP sends its replies with them.
 * Loaded on first use; every function works on plain numbers and Buffers.
 */

export const AF_UNIX = 1;
export const AF_INET = 2;
export const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;
export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;
export const EPOLLIN = 0x001;
export const EPOLLOUT = 0x004;
export const EPOLLERR = 0x008;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
export const EPOLL_CTL_MOD = 3;
/** struct epoll_event is packed on x86-64 (12 bytes) and padded on other 64-bit targets (16). */
export const EPOLL_EVENT_SIZE = process.arch === 'x64' ? 12 : 16;
export const EPOLL_DATA_OFFSET = process.arch === 'x64' ? 4 : 8;
export const EAGAIN = 11;
export const EINTR = 4;
export const ENOBUFS = 105;
/** sizeof(struct sockaddr_in). */
export const SOCKADDR_IN_SIZE = 16;

export interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Buffer, len: number): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, len: number): number;
  getsockname(fd: number, addr: Buffer, len: Buffer): number;
  close(fd: number): number;
  sendto(fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrLen: number): number;
  recvfrom(fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrLen: Buffer): number;
  read(fd: number, buf: Buffer, len: number): number;
  write(fd: number, buf: Buffer, len: number): number;
  eventfd(initval: number, flags: number): number;
  epoll_create1(flags: number): number;
  epoll_ctl(epfd: number, op: number, fd: number, event: Buffer | null): number;
  epoll_wait(epfd: number, events: Buffer, max: number, timeoutMs: number): number;
  strerror(errnum: number): string;
}

let libc: Libc | undefined;

/** The bindings, or a clear error where they cannot be had (not Linux, no koffi build). */
export function loadLibc(): Libc {
  if (libc) return libc;
  if (process.platform !== 'linux') throw new Error(`hiveboot's UDP servers need Linux, not ${process.platform}`);
  const lib = koffi.load('libc.so.6');
  // ssize_t results are declared intptr_t: koffi gives them back as plain numbers.
  libc = {
    socket: lib.func('int socket(int, int, int)'),
    bind: lib.func('int bind(int, const void *, uint32_t)'),
    setsockopt: lib.func('int setsockopt(int, int, int, const void *, uint32_t)'),
    getsockname: lib.func('int getsockname(int, void *, void *)'),
    close: lib.func('int close(int)'),
    sendto: lib.func('intptr_t sendto(int, const void *, uintptr_t, int, const void *, uint32_t)'),
    recvfrom: lib.func('intptr_t recvfrom(int, void *, uintptr_t, int, void *, void *)'),
    read: lib.func('intptr_t read(int, void *, uintptr_t)'),
    write: lib.func('intptr_t write(int, const void *, uintptr_t)'),
    eventfd: lib.func('int eventfd(unsigned int, int)'),
    epoll_create1: lib.func('int epoll_create1(int)'),
    epoll_ctl: lib.func('int epoll_ctl(int, int, int, void *)'),
    epoll_wait: lib.func('int epoll_wait(int, void *, int, int)'),
    strerror: lib.func('const char *strerror(int)'),
  };
  return libc;
}

/** errno of the last libc call on this thread. */
export function errno(): number {
  return koffi.errno();
}

export function errorText(c: Libc, what: string): string {
  return `${what}: ${c.strerror(errno())}`;
}

/** struct sockaddr_in for an IPv4 address and port. */
export function sockaddrIn(address: string, port: number): Buffer {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new RangeError(`not an IPv4 address: ${address}`);
  const sa = Buffer.alloc(SOCKADDR_IN_SIZE);
  sa.writeUInt16LE(AF_INET, 0);
  sa.writeUInt16BE(port, 2);
  for (let i = 0; i < 4; i++) sa[4 + i] = parts[i]!;
  return sa;
}

/** sizeof(struct sockaddr_un): the family and a 108-byte path. */
const SOCKADDR_UN_SIZE = 110;

/**
 * struct sockaddr_un and its length for a socket path, or for an abstract name written "@name" (a
 * leading NUL instead of the '@', no trailing NUL: the length says where the name ends).
 */
export function sockaddrUn(path: string): { addr: Buffer; len: number } {
  const abstract = path.startsWith('@');
  const name = Buffer.from(abstract ? path.slice(1) : path);
  // A path needs its terminating NUL inside sun_path; an abstract name counts its leading one.
  const len = 2 + 1 + name.length;
  if (len > SOCKADDR_UN_SIZE || (!abstract && name.includes(0))) throw new RangeError(`not a usable unix socket address: ${path}`);
  const addr = Buffer.alloc(SOCKADDR_UN_SIZE);
  addr.writeUInt16LE(AF_UNIX, 0);
  name.copy(addr, abstract ? 3 : 2);
  return { addr, len };
}

export function sockaddrAddress(sa: Buffer): string {
  return `${sa[4]}.${sa[5]}.${sa[6]}.${sa[7]}`;
}

export function sockaddrPort(sa: Buffer): number {
  return sa.readUInt16BE(2);
}

/** A non-blocking UDP socket bound to address:port (0: any free port); returns its descriptor and port. */
export function openUdp4(c: Libc, address: string, port: number): { fd: number; port: number } {
  const fd = c.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new Error(errorText(c, 'socket()'));
  if (c.bind(fd, sockaddrIn(address, port), SOCKADDR_IN_SIZE) !== 0) {
    const message = errorText(c, `bind ${address}:${port}`);
    c.close(fd);
    throw new Error(message);
  }
  const sa = Buffer.alloc(SOCKADDR_IN_SIZE);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(SOCKADDR_IN_SIZE);
  c.getsockname(fd, sa, len);
  return { fd, port: sockaddrPort(sa) };
}

/** A non-blocking eventfd: the way to wake a thread that is waiting in epoll_wait. */
export function openEventFd(c: Libc): number {
  const fd = c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) throw new Error(errorText(c, 'eventfd()'));
  return fd;
}

/** epoll_event { events, data.fd } for epoll_ctl, into `into` (EPOLL_EVENT_SIZE bytes). */
export function epollEvent(into: Buffer, events: number, fd: number): Buffer {
  into.fill(0);
  into.writeUInt32LE(events, 0);
  into.writeInt32LE(fd, EPOLL_DATA_OFFSET);
  return into;
}
