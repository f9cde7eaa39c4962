import { MAX_BLKSIZE, MIN_BLKSIZE, type TftpOptions } from './packet.js';

/**
 * Option negotiation for a read request: blksize (RFC 2348), tsize and timeout (RFC 2349) and
 * windowsize (RFC 7440). Pure: what the client asked for, the file's size and our limits in, the
 * transfer's parameters and the OACK out. An option we do not know or whose value is unusable is left
 * out of the OACK, which RFC 2347 reads as "declined" — the transfer goes on with the default.
 */

export interface NegotiationLimits {
  /** The largest block we agree to (≤ 65464); a client asking for more is answered with this. */
  maxBlksize: number;
  /** The largest window we agree to; a client asking for more is answered with this. */
  maxWindowsize: number;
}

export interface Negotiated {
  blksize: number;
  windowsize: number;
  /** The per-packet retransmission timeout the client asked for (RFC 2349), or null for ours. */
  timeoutMs: number | null;
  /** What goes into the OACK, in the client's order; empty means no OACK: DATA 1 is the answer. */
  oack: TftpOptions;
}

export const DEFAULT_BLKSIZE = 512;
export const MAX_WINDOWSIZE = 65535;

export function negotiate(requested: TftpOptions, fileSize: number, limits: NegotiationLimits): Negotiated {
  const result: Negotiated = { blksize: DEFAULT_BLKSIZE, windowsize: 1, timeoutMs: null, oack: new Map() };
  for (const [name, value] of requested) {
    if (name === 'tsize') {
      // A reader sends 0 and wants the real size back (iPXE is far slower without it). The value
      // carries nothing on a read, so any is taken: atftp, for one, sends "enable".
      result.oack.set(name, String(fileSize));
      continue;
    }
    const n = decimal(value);
    if (n === null) continue;
    switch (name) {
      case 'blksize':
        // Below 8 is invalid (declined); above what we allow, RFC 2348 lets us answer with less.
        if (n < MIN_BLKSIZE) break;
        result.blksize = Math.min(n, limits.maxBlksize, MAX_BLKSIZE);
        result.oack.set(name, String(result.blksize));
        break;
      case 'windowsize':
        if (n < 1) break;
        result.windowsize = Math.min(n, limits.maxWindowsize, MAX_WINDOWSIZE);
        result.oack.set(name, String(result.windowsize));
        break;
      case 'timeout':
        // RFC 2349: 1–255 seconds, and the server may not answer with another value.
        if (n < 1 || n > 255) break;
        result.timeoutMs = n * 1000;
        result.oack.set(name, String(n));
        break;
    }
  }
  return result;
}

/** A plain decimal number, or null: no sign, no exponent, no spaces, not absurdly long. */
function decimal(value: string): number | null {
  return /^[0-9]{1,12}$/.test(value) ? Number(value) : null;
}
