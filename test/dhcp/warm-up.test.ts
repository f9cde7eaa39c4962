import { describe, expect, it } from 'vitest';
import { warmUpDhcp } from '../../src/dhcp/warm-up.js';

// The warm-up only helps if its made-up machines go down the path real ones take: every DISCOVER
// offered and (full mode) every REQUEST acknowledged. If a change to the handlers started refusing
// them, the warm-up would silently warm nothing; this says so instead.
describe('warmUpDhcp', () => {
  it('full mode: every made-up DISCOVER gets an OFFER and every REQUEST an ACK', () => {
    expect(warmUpDhcp('full', 200)).toBe(400);
  });

  it('proxy mode: every made-up PXE and iPXE DISCOVER gets a proxy OFFER', () => {
    expect(warmUpDhcp('proxy', 200)).toBe(200);
  });
});
