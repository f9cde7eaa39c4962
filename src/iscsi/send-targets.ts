// The Text request we answer: SendTargets (RFC 7143 §12.3 and Appendix C). A discovery session sees
// only the targets its initiator may use; a normal session sees its own target.

import type { TargetAccess } from './login/types.js';

function keysOf(data: Buffer): Map<string, string> {
  const keys = new Map<string, string>();
  for (const pair of data.toString('utf8').split('\u0000')) {
    const eq = pair.indexOf('=');
    if (eq > 0) keys.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return keys;
}

/** The Text Response data for a Text Request's data, cut to what the initiator can receive. */
export function sendTargetsResponse(request: Buffer, visible: readonly TargetAccess[], limit: number): Buffer {
  const keys = keysOf(request);
  const lines: string[] = [];
  for (const [key, value] of keys) {
    if (key !== 'SendTargets') {
      lines.push(`${key}=NotUnderstood`);
      continue;
    }
    for (const target of visible) {
      if (value !== 'All' && value !== '' && value !== target.name) continue;
      lines.push(`TargetName=${target.name}`);
      for (const portal of target.portals) lines.push(`TargetAddress=${portal}`);
    }
  }
  let out = lines.length ? lines.join('\u0000') + '\u0000' : '';
  // Targets that do not fit are left out whole rather than cut mid-key.
  while (Buffer.byteLength(out) > limit) {
    const cut = out.lastIndexOf('TargetName=');
    if (cut <= 0) return Buffer.alloc(0);
    out = out.slice(0, cut);
  }
  return Buffer.from(out, 'utf8');
}
