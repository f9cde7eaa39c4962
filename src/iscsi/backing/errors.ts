/**
 * Errors a backing store raises for reasons of its own (I/O errors keep Node's errno codes: ENOSPC,
 * EIO…). The SCSI layer maps `code` to sense data; the CLI and the provisioners show `message`.
 */
export type BackingErrorCode =
  /** write or discard on a read-only device. */
  | 'READ_ONLY'
  /** offset/length not block-aligned or past the end (the SCSI layer should have refused it first). */
  | 'OUT_OF_RANGE'
  /** the device was closed. */
  | 'CLOSED'
  /** another open (this process or another) holds the file. */
  | 'IN_USE'
  /** asked to create something that already exists. */
  | 'EXISTS'
  /** the file is not what it should be: wrong magic, unknown version, bad checksum, truncated. */
  | 'BAD_FORMAT'
  /** the golden image is not the one the overlay was made from. */
  | 'GOLDEN_MISMATCH'
  /** an existing file's size differs from the size asked for. */
  | 'SIZE_MISMATCH';

export class BackingError extends Error {
  constructor(
    readonly code: BackingErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BackingError';
  }
}

/** True for a Node/libc error carrying `code` (ENOENT, EOPNOTSUPP…). */
export function hasErrno(err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code;
}

/**
 * True when the file system does not have the operation. Linux's EOPNOTSUPP and ENOTSUP are the same
 * number (95), which libuv names ENOTSUP; ENOSYS comes from kernels without the system call.
 */
export function isUnsupported(err: unknown): boolean {
  return hasErrno(err, 'EOPNOTSUPP') || hasErrno(err, 'ENOTSUP') || hasErrno(err, 'ENOSYS');
}
