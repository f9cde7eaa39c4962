// Per-host CHAP credentials. The lengths are the Ceph iSCSI gateway's limits (user 8–64, secret
// 12–16 characters), so a host's credentials stay valid if its disk moves between backends.

import { randomInt } from 'node:crypto';

const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';

function randomString(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET[randomInt(ALPHABET.length)];
  return out;
}

export interface ChapPair {
  user: string;
  secret: string;
}

/** A random user (hb- + 13 characters) and a 16-character secret, ~94 bits of entropy. */
export function newChapPair(): ChapPair {
  return { user: `hb-${randomString(13)}`, secret: randomString(16) };
}

/** A fresh secret for an existing user (rotation keeps the user name, as the gateway does). */
export function newChapSecret(): string {
  return randomString(16);
}
