import { getSystemErrorName } from 'node:util';

/**
 * librados and librbd report failures as a negative errno. CephError carries it as Node does
 * (`code` is the errno name: ENOENT, EACCES, ETIMEDOUT…, `errno` the positive number) with a message
 * that says what was being done to what, in words, so nobody has to decode "-13" from a log. The
 * backing store and the SCSI layer match `code` the way they match Node's own I/O errors (ENOSPC
 * becomes "space allocation failed" sense data, for instance).
 */
export class CephError extends Error {
  constructor(
    /** Errno name, e.g. 'ENOENT'; 'ETIMEDOUT' also for our own deadlines. */
    readonly code: string,
    /** Positive errno (0 when the failure is not an errno). */
    readonly errno: number,
    /** The library call, e.g. 'rbd_open'. */
    readonly op: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CephError';
  }
}

/** Ceph's own numbers on Linux: EBLOCKLISTED is ESHUTDOWN, the OSDs refusing a blocklisted client. */
const CEPH_NAMES: Record<number, string> = { 108: 'EBLOCKLISTED' };

/** Short readings of the errnos librados/librbd return, where strerror would mislead. */
const WORDS: Record<string, string> = {
  ENOENT: 'does not exist',
  EEXIST: 'already exists',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ETIMEDOUT: 'timed out',
  EBUSY: 'busy (in use)',
  EROFS: 'read-only (or another client holds the exclusive lock)',
  ENOSPC: 'the cluster is out of space',
  EDQUOT: 'the pool quota is exceeded',
  EINVAL: 'invalid argument',
  ENOTEMPTY: 'has snapshots or children',
  ENOSYS: 'not supported by this image or cluster',
  EOPNOTSUPP: 'not supported by this image or cluster',
  EBLOCKLISTED: 'this client was blocklisted (another client broke its lock)',
  ERANGE: 'result too large',
  EIO: 'I/O error',
  ESHUTDOWN: 'the connection was shut down',
  ENOTCONN: 'not connected',
};

export function errnoName(errno: number): string {
  if (CEPH_NAMES[errno]) return CEPH_NAMES[errno]!;
  try {
    return getSystemErrorName(-errno);
  } catch {
    return `E${errno}`;
  }
}

/** "does not exist (ENOENT)" for -2. */
export function describeErrno(rc: number): string {
  const name = errnoName(-rc);
  return `${WORDS[name] ?? name.toLowerCase()} (${name})`;
}

/**
 * The error for return value `rc` (negative) of `op`: `what` names the object ("RBD image
 * hiveboot/w1"), `explain` may replace the generic wording for errnos the caller understands.
 */
export function cephError(rc: number, op: string, what: string, explain?: Partial<Record<string, string>>): CephError {
  const errno = -rc;
  const code = errnoName(errno);
  const reason = explain?.[code];
  return new CephError(code, errno, op, reason ? `${what}: ${reason} (${code})` : `${what}: ${op} failed: ${describeErrno(rc)}`);
}

/** Throws cephError(...) when rc < 0; returns rc (as a number) otherwise. */
export function check(rc: number | bigint, op: string, what: string, explain?: Partial<Record<string, string>>): number {
  const n = Number(rc);
  if (n < 0) throw cephError(n, op, what, explain);
  return n;
}

/** True for a CephError (or any error) carrying errno name `code`. */
export function isCephCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}
