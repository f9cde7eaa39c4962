/**
 * Shared test fixtures for the login phase: a policy with a few hosts, Login Request builders, text
 * helpers and a CHAP reference written straight from RFC 1994 (independent of src/iscsi/login/chap.ts).
 */
import { createHash } from 'node:crypto';
import type { LoginPolicy, LoginRequest, TargetAccess } from '../../../src/iscsi/login/types.js';

export const NODE7 = 'iqn.2024-01.org.hiveboot:node7';
export const NODE8 = 'iqn.2024-01.org.hiveboot:node8';
export const STRANGER = 'iqn.1993-08.org.debian:01:deadbeef';
export const INITIATOR7 = 'iqn.2010-04.org.ipxe:00-16-3e-aa-bb-07';
export const INITIATOR8 = 'iqn.2004-10.com.ubuntu:01:node8';
export const INITIATOR9 = 'iqn.2004-10.com.ubuntu:01:node9';
export const OPEN = 'iqn.2024-01.org.hiveboot:scratch';

/** Secrets 12–16 characters (DESIGN.md), chosen so no hex or base64 digest can contain them by chance. */
export const SECRETS = {
  node7: 'Tr0ub4dor&3-n7',
  node7Mutual: 'Corr3ct-H0rse!',
  node8: 'Ba++ery-St4ple',
  node8Mutual: 'S3cond-S3cret#',
  node9: 'Thr33-Secr3t%%',
} as const;

export const TARGET7: TargetAccess = {
  name: NODE7,
  acl: [INITIATOR7],
  chap: { user: 'node7-user', secret: SECRETS.node7, mutual: { user: 'hiveboot-node7', secret: SECRETS.node7Mutual } },
  portals: ['192.0.2.10:3260,1'],
  alias: 'node7',
};

export const TARGET8: TargetAccess = {
  name: NODE8,
  acl: [INITIATOR8],
  chap: { user: 'node8-user', secret: SECRETS.node8, mutual: { user: 'hiveboot-node8', secret: SECRETS.node8Mutual } },
  portals: ['192.0.2.10:3260,1'],
};

/** A host with one-way CHAP only (no mutual secret configured). */
export const TARGET9: TargetAccess = {
  name: 'iqn.2024-01.org.hiveboot:node9',
  acl: [INITIATOR9],
  chap: { user: 'node9-user', secret: SECRETS.node9 },
  portals: ['192.0.2.10:3260,1'],
};

/** A target without CHAP (AuthMethod=None), open to node8's initiator and a stranger. */
export const TARGET_OPEN: TargetAccess = { name: OPEN, acl: [INITIATOR8, STRANGER], portals: ['192.0.2.10:3260,1'] };

export const ALL_TARGETS = [TARGET7, TARGET8, TARGET9, TARGET_OPEN];
export const ALL_SECRETS: string[] = Object.values(SECRETS);

export function policy(options: { discoveryNeedsChap?: boolean; targets?: TargetAccess[] } = {}): LoginPolicy {
  const targets = options.targets ?? ALL_TARGETS;
  return {
    target: (name) => targets.find((t) => t.name === name),
    targets: () => targets,
    discoveryNeedsChap: options.discoveryNeedsChap ?? false,
  };
}

export const ISID = Buffer.from([0x80, 0x23, 0x45, 0x67, 0x00, 0x01]);

export function request(fields: Partial<LoginRequest> & { pairs?: [string, string][] }): LoginRequest {
  const { pairs, ...rest } = fields;
  return {
    transit: false,
    continue: false,
    csg: 0,
    nsg: 0,
    versionMax: 0,
    versionMin: 0,
    isid: ISID,
    tsih: 0,
    itt: 0x1000,
    cid: 0,
    cmdSN: 1,
    expStatSN: 0,
    data: pairs ? text(pairs) : Buffer.alloc(0),
    ...rest,
  };
}

/** key=value\0… written by hand, independent of src/iscsi/text.ts. */
export function text(pairs: readonly (readonly [string, string])[]): Buffer {
  return Buffer.from(pairs.map(([k, v]) => `${k}=${v}\0`).join(''), 'utf8');
}

/** The pairs of a response segment, in order. */
export function pairsOf(data: Buffer): [string, string][] {
  return data
    .toString('utf8')
    .split('\0')
    .filter((s) => s.length > 0)
    .map((s) => {
      const eq = s.indexOf('=');
      return [s.slice(0, eq), s.slice(eq + 1)] as [string, string];
    });
}

export function keysOf(data: Buffer): Map<string, string> {
  return new Map(pairsOf(data));
}

const HASHES: Record<number, string> = { 5: 'md5', 6: 'sha1', 7: 'sha256', 8: 'sha3-256' };

/** RFC 1994 §4.1: Response = H(Identifier || secret || Challenge). */
export function referenceChap(algorithm: number, identifier: number, secret: string, challenge: Buffer): Buffer {
  const hash = HASHES[algorithm];
  if (!hash) throw new Error(`no hash for CHAP_A=${algorithm}`);
  const h = createHash(hash);
  h.update(Buffer.from([identifier]));
  h.update(Buffer.from(secret, 'utf8'));
  h.update(challenge);
  return h.digest();
}

/** Decodes a CHAP binary value the way initiators do: 0x hex or 0b base64. */
export function decodeBinary(value: string): Buffer {
  if (/^0[xX]/.test(value)) return Buffer.from(value.slice(2), 'hex');
  if (/^0[bB]/.test(value)) return Buffer.from(value.slice(2), 'base64');
  throw new Error(`not a binary value: ${value}`);
}
