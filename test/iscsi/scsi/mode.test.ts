import { describe, expect, it } from 'vitest';
import { BS, cdb, expectGood, expectInvalidCdbField, expectSense, Key, makeUnit, Op, run } from './helpers.js';

interface Parsed {
  modeDataLength: number;
  mediumType: number;
  deviceSpecific: number;
  longLba: boolean;
  descriptor: Buffer;
  pages: Map<number, Buffer>;
}

function parse(d: Buffer, ten: boolean): Parsed {
  const header = ten ? 8 : 4;
  const bdl = ten ? d.readUInt16BE(6) : d[3]!;
  const pages = new Map<number, Buffer>();
  for (let at = header + bdl; at < d.length; at += 2 + d[at + 1]!) pages.set(d[at]! & 0x3f, d.subarray(at, at + 2 + d[at + 1]!));
  return {
    modeDataLength: ten ? d.readUInt16BE(0) : d[0]!,
    mediumType: ten ? d[2]! : d[1]!,
    deviceSpecific: ten ? d[3]! : d[2]!,
    longLba: ten ? (d[4]! & 1) === 1 : false,
    descriptor: d.subarray(header, header + bdl),
    pages,
  };
}

async function sense6(lu: Parameters<typeof run>[0], page: number, opts: Parameters<typeof cdb.modeSense6>[1] = {}) {
  const r = await run(lu, cdb.modeSense6(page, opts));
  expectGood(r);
  return parse(r.dataIn!, false);
}

describe('MODE SENSE', () => {
  it('(6) all pages: header, block descriptor, caching with WCE=1, control and informational exceptions', async () => {
    const { lu } = makeUnit();
    const r = await run(lu, cdb.modeSense6(0x3f));
    const m = parse(r.dataIn!, false);
    expect(m.modeDataLength).toBe(r.dataIn!.length - 1);
    expect(m.mediumType).toBe(0);
    expect(m.deviceSpecific).toBe(0x10); // DPOFUA, not write-protected
    expect(m.descriptor.readUInt32BE(0)).toBe(1024);
    expect(m.descriptor.readUIntBE(5, 3)).toBe(512);
    expect([...m.pages.keys()]).toEqual([0x08, 0x0a, 0x1c]);
    const caching = m.pages.get(0x08)!;
    expect(caching[1]).toBe(0x12);
    expect(caching[0]! & 0x80).toBe(0); // PS=0: Linux would otherwise send SP=1
    expect(caching[2]! & 0x04).toBe(0x04); // WCE
    expect(caching[2]! & 0x01).toBe(0); // RCD
    const control = m.pages.get(0x0a)!;
    expect(control[1]).toBe(0x0a);
    expect(control[2]! & 0x04).toBe(0); // D_SENSE: fixed format sense
    expect(control[2]! >> 5).toBe(0); // TST
    expect(control[3]! >> 4).toBe(1); // QUEUE ALGORITHM MODIFIER: unrestricted
    expect(control[4]! & 0x08).toBe(0); // SWP
    const ie = m.pages.get(0x1c)!;
    expect(ie[2]! & 0x08).toBe(0x08); // DEXCPT
  });

  it('sets WP in the device-specific parameter on a read-only unit', async () => {
    const m = await sense6(makeUnit({ readOnly: true }).lu, 0x3f);
    expect(m.deviceSpecific & 0x80).toBe(0x80);
  });

  it('leaves out the block descriptor with DBD', async () => {
    const m = await sense6(makeUnit().lu, 0x08, { dbd: true });
    expect(m.descriptor.length).toBe(0);
    expect([...m.pages.keys()]).toEqual([0x08]);
  });

  it('PC=changeable shows WCE as the only changeable bit', async () => {
    const m = await sense6(makeUnit().lu, 0x3f, { pc: 1, dbd: true });
    const caching = m.pages.get(0x08)!;
    expect([...caching.subarray(2)]).toEqual([0x04, ...new Array<number>(caching.length - 3).fill(0)]);
    for (const code of [0x0a, 0x1c]) expect(m.pages.get(code)!.subarray(2).every((x) => x === 0)).toBe(true);
  });

  it('PC=default shows WCE=1 even after it was cleared', async () => {
    const { lu } = makeUnit();
    lu.mode.writeCacheEnabled = false;
    expect((await sense6(lu, 0x08, { pc: 2 })).pages.get(0x08)![2]! & 0x04).toBe(0x04);
    expect((await sense6(lu, 0x08, { pc: 0 })).pages.get(0x08)![2]! & 0x04).toBe(0);
  });

  it('PC=saved is SAVING PARAMETERS NOT SUPPORTED', async () => {
    const r = await run(makeUnit().lu, cdb.modeSense6(0x08, { pc: 3 }));
    const s = expectSense(r, Key.Illegal, 0x39);
    expect(s.fieldPointer).toBe(2);
  });

  it('refuses an unknown page or subpage, pointing at the field', async () => {
    const { lu } = makeUnit();
    expectInvalidCdbField(await run(lu, cdb.modeSense6(0x19)), 2, 5);
    expectInvalidCdbField(await run(lu, cdb.modeSense6(0x08, { subpage: 0x01 })), 3);
    // Subpage FFh ("all subpages") is fine.
    expectGood(await run(lu, cdb.modeSense6(0x3f, { subpage: 0xff })));
  });

  it('(6) applies the allocation length', async () => {
    const { lu } = makeUnit();
    const r = await run(lu, cdb.modeSense6(0x3f, { alloc: 4 }));
    expect(r.dataIn!.length).toBe(4);
    // The header still tells how much there is.
    expect(r.dataIn![0]).toBeGreaterThan(3);
  });

  it('(10) with LLBAA returns a long block descriptor', async () => {
    const { lu } = makeUnit();
    const r = await run(lu, cdb.modeSense10(0x08, { llbaa: true }));
    expectGood(r);
    const m = parse(r.dataIn!, true);
    expect(m.modeDataLength).toBe(r.dataIn!.length - 2);
    expect(m.longLba).toBe(true);
    expect(m.descriptor.length).toBe(16);
    expect(m.descriptor.readBigUInt64BE(0)).toBe(1024n);
    expect(m.descriptor.readUInt32BE(12)).toBe(512);
    const short = parse((await run(lu, cdb.modeSense10(0x08))).dataIn!, true);
    expect(short.descriptor.length).toBe(8);
  });
});

/** What Linux's sd does for "write through": MODE SENSE the caching page, change WCE, MODE SELECT it back. */
function cachingSelect6(page: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0, 0, 0, 0]), page]);
}

describe('MODE SELECT', () => {
  it('clears WCE like Linux "write through": later MODE SENSE shows it and writes become FUA', async () => {
    const { lu, dev } = makeUnit();
    const page = Buffer.from((await sense6(lu, 0x08, { dbd: true })).pages.get(0x08)!);
    page[2] = page[2]! & ~0x04;
    const list = cachingSelect6(page);
    expectGood(await run(lu, cdb.modeSelect6(list.length), list));
    expect((await sense6(lu, 0x08)).pages.get(0x08)![2]! & 0x04).toBe(0);
    expectGood(await run(lu, cdb.rw10(Op.Write10, 0, 1), Buffer.alloc(BS)));
    expect(dev.callsOf('write')[0]!.fua).toBe(true);
    // And back to write-back.
    page[2] = page[2]! | 0x04;
    expectGood(await run(lu, cdb.modeSelect6(list.length), cachingSelect6(page)));
    expect(lu.mode.writeCacheEnabled).toBe(true);
  });

  it('accepts an unchanged control page and a block descriptor restating the geometry', async () => {
    const { lu } = makeUnit();
    const m = await sense6(lu, 0x0a);
    const list = Buffer.concat([Buffer.from([0, 0, 0, 8]), m.descriptor, m.pages.get(0x0a)!]);
    expectGood(await run(lu, cdb.modeSelect6(list.length), list));
  });

  it('refuses a change to an unchangeable bit, pointing at it in the parameter list, and changes nothing', async () => {
    const { lu } = makeUnit();
    const caching = Buffer.from((await sense6(lu, 0x08, { dbd: true })).pages.get(0x08)!);
    caching[2] = caching[2]! & ~0x04; // a legal change…
    const control = Buffer.from((await sense6(lu, 0x0a, { dbd: true })).pages.get(0x0a)!);
    control[2] = control[2]! | 0x04; // …and D_SENSE, which is not changeable
    const list = Buffer.concat([Buffer.from([0, 0, 0, 0]), caching, control]);
    const s = expectSense(await run(lu, cdb.modeSelect6(list.length), list), Key.Illegal, 0x26);
    expect(s.sksv).toBe(true);
    expect(s.inCdb).toBe(false);
    expect(s.fieldPointer).toBe(4 + caching.length + 2);
    expect(s.bitPointer).toBe(2);
    expect(lu.mode.writeCacheEnabled).toBe(true);
  });

  it('refuses RCD (read cache disable), which we cannot honour', async () => {
    const { lu } = makeUnit();
    const caching = Buffer.from((await sense6(lu, 0x08, { dbd: true })).pages.get(0x08)!);
    caching[2] = caching[2]! | 0x01;
    expectSense(await run(lu, cdb.modeSelect6(4 + caching.length), cachingSelect6(caching)), Key.Illegal, 0x26);
  });

  it('refuses an unknown page, a wrong page length, and a subpage', async () => {
    const { lu } = makeUnit();
    const unknown = Buffer.from([0, 0, 0, 0, 0x19, 2, 0, 0]);
    expect(expectSense(await run(lu, cdb.modeSelect6(unknown.length), unknown), Key.Illegal, 0x26).fieldPointer).toBe(4);
    const badLength = Buffer.concat([Buffer.from([0, 0, 0, 0, 0x08, 0x10]), Buffer.alloc(0x10)]);
    expect(expectSense(await run(lu, cdb.modeSelect6(badLength.length), badLength), Key.Illegal, 0x26).fieldPointer).toBe(5);
    const subpage = Buffer.from([0, 0, 0, 0, 0x48, 0, 0, 4, 0, 0, 0, 0]);
    expectSense(await run(lu, cdb.modeSelect6(subpage.length), subpage), Key.Illegal, 0x26);
  });

  it('a truncated page is PARAMETER LIST LENGTH ERROR', async () => {
    const { lu } = makeUnit();
    const page = (await sense6(lu, 0x08, { dbd: true })).pages.get(0x08)!;
    const list = cachingSelect6(page).subarray(0, 12);
    expectSense(await run(lu, cdb.modeSelect6(list.length), list), Key.Illegal, 0x1a);
    expectSense(await run(lu, cdb.modeSelect6(2), Buffer.alloc(2)), Key.Illegal, 0x1a);
  });

  it('refuses a block descriptor that would change the block length or the capacity', async () => {
    const { lu } = makeUnit();
    const d = Buffer.alloc(8);
    d.writeUInt32BE(0, 0);
    d.writeUIntBE(4096, 5, 3);
    const list = Buffer.concat([Buffer.from([0, 0, 0, 8]), d]);
    expect(expectSense(await run(lu, cdb.modeSelect6(list.length), list), Key.Illegal, 0x26).fieldPointer).toBe(9);
    d.writeUIntBE(512, 5, 3);
    d.writeUInt32BE(999, 0);
    const capacity = Buffer.concat([Buffer.from([0, 0, 0, 8]), d]);
    expect(expectSense(await run(lu, cdb.modeSelect6(capacity.length), capacity), Key.Illegal, 0x26).fieldPointer).toBe(4);
  });

  it('refuses SP=1 (no saved pages) and PF=0', async () => {
    const { lu } = makeUnit();
    const page = (await sense6(lu, 0x08, { dbd: true })).pages.get(0x08)!;
    const list = cachingSelect6(page);
    expectInvalidCdbField(await run(lu, cdb.modeSelect6(list.length, { sp: true }), list), 1, 0);
    expectInvalidCdbField(await run(lu, cdb.modeSelect6(list.length, { pf: false }), list), 1, 4);
  });

  it('an empty parameter list changes nothing and succeeds', async () => {
    expectGood(await run(makeUnit().lu, cdb.modeSelect6(0)));
  });

  it('(10) works with its 8-byte header', async () => {
    const { lu } = makeUnit();
    const page = Buffer.from(parse((await run(lu, cdb.modeSense10(0x08, { dbd: true }))).dataIn!, true).pages.get(0x08)!);
    page[2] = page[2]! & ~0x04;
    const list = Buffer.concat([Buffer.alloc(8), page]);
    expectGood(await run(lu, cdb.modeSelect10(list.length), list));
    expect(lu.mode.writeCacheEnabled).toBe(false);
  });
});
