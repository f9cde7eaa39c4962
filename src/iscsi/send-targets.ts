// The Text request we answer: SendTargets (RFC 7143 §12.3 and Appendix C). A discovery session sees
// only the targets its initiator may use; a normal session sees its own target.

import type { TargetAccess } from './login/types.js';
import { buildText, NOT_UNDERSTOOD, parseText, type TextPair } from './text.js';

/** The Text Response data for a Text Request's data, cut to what the initiator can receive. */
export function sendTargetsResponse(request: Buffer, visible: readonly TargetAccess[], limit: number): Buffer {
  const parsed = parseText(request);
  if (!parsed.ok) return Buffer.alloc(0);
  const answer: TextPair[] = [];
  for (const { key, value } of parsed.pairs) {
    if (key !== 'SendTargets') {
      answer.push({ key, value: NOT_UNDERSTOOD });
      continue;
    }
    for (const target of visible) {
      if (value !== 'All' && value !== '' && value !== target.name) continue;
      const entry = [{ key: 'TargetName', value: target.name }, ...target.portals.map((p) => ({ key: 'TargetAddress', value: p }))];
      // Targets that do not fit are left out whole rather than cut mid-key.
      if (buildText([...answer, ...entry]).length > limit) break;
      answer.push(...entry);
    }
  }
  return buildText(answer);
}
