import { describe, expect, it } from 'vitest';
import { cdb, expectGood, expectInvalidCdbField, makeUnit, run } from './helpers.js';

async function vpd(page: number, device = {}, limits = {}) {
  const { lu } = makeUnit(device, { limits });
  const r = await run(lu, cdb.inquiry(4096, true, page));
  expectGood(r);
  const d = r.dataIn!;
  expect(d[0]).toBe(0x00);
  expect(d[1]).toBe(page);
  // PAGE LENGTH covers exactly what follows the 4-byte header.
  expect(d.readUInt16BE(2)).toBe(d.length - 4);
  return d;
}

describe('standard INQUIRY', () => {
  it('describes a connected direct-access SPC-4 device with tagged queuing', async () => {
    const { lu } = makeUnit();
    const r = await run(lu, cdb.inquiry(255));
    expectGood(r);
    const d = r.dataIn!;
    expect(d.length).toBe(96);
    expect(d[0]).toBe(0x00); // qualifier 000b, type 00h
    expect(d[1]! & 0x80).toBe(0); // not removable
    expect(d[2]).toBe(0x06); // SPC-4
    expect(d[3]! & 0x0f).toBe(2); // response data format
    expect(d[3]! & 0xc0).toBe(0); // no AERC/TRMTSK
    expect(d[4]).toBe(d.length - 5);
    expect(d[5]! & 0x01).toBe(0); // no PROTECT
    expect(d[7]! & 0x02).toBe(0x02); // CMDQUE
    expect(d.subarray(8, 16).toString('ascii')).toBe('HIVEBOOT');
    expect(d.subarray(16, 32).toString('ascii')).toBe('Virtual Disk    ');
    expect(d.subarray(32, 36).toString('ascii')).toBe('0.1 ');
    const descriptors = Array.from({ length: 8 }, (_, i) => d.readUInt16BE(58 + 2 * i));
    expect(descriptors).toContain(0x04c0); // SBC-3
    expect(descriptors).toContain(0x0460); // SPC-4
    expect(descriptors).toContain(0x0960); // iSCSI
  });

  it('pads short identity strings with spaces and replaces non-ASCII characters', async () => {
    const { lu } = makeUnit({}, { identity: { vendor: 'HB', product: 'Disk\u00e9\u0001', revision: '12345' } });
    const d = (await run(lu, cdb.inquiry(96))).dataIn!;
    expect(d.subarray(8, 16).toString('ascii')).toBe('HB      ');
    expect(d.subarray(16, 32).toString('ascii')).toBe('Disk??          ');
    expect(d.subarray(32, 36).toString('ascii')).toBe('1234');
  });

  it('applies the allocation length, including 16-bit lengths (SPC-3 and later)', async () => {
    const { lu } = makeUnit();
    for (const alloc of [0, 5, 36, 255, 511, 512]) {
      const r = await run(lu, cdb.inquiry(alloc));
      expectGood(r);
      expect(r.dataIn?.length ?? 0).toBe(Math.min(alloc, 96));
    }
  });

  it('refuses a page code without EVPD, and an unknown VPD page, pointing at the page code', async () => {
    const { lu } = makeUnit();
    expectInvalidCdbField(await run(lu, cdb.inquiry(255, false, 0x80)), 2);
    expectInvalidCdbField(await run(lu, cdb.inquiry(255, true, 0x86)), 2);
  });
});

describe('VPD pages', () => {
  it('0x00 lists every page in ascending order, and each of them can be read', async () => {
    const d = await vpd(0x00);
    const pages = [...d.subarray(4)];
    expect(pages).toEqual([0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2]);
    const { lu } = makeUnit();
    for (const p of pages) expectGood(await run(lu, cdb.inquiry(255, true, p)));
  });

  it('0x80 holds the unit serial number', async () => {
    const d = await vpd(0x80);
    expect(d.subarray(4).toString('ascii')).toBe('HB-0001-TEST');
  });

  it('0x83 holds an NAA-6 LU designator, a T10 vendor id and the target SCSI name string', async () => {
    const d = await vpd(0x83);
    const designators: Array<{ codeSet: number; piv: boolean; assoc: number; type: number; protocol: number; value: Buffer }> = [];
    for (let at = 4; at < d.length; ) {
      const len = d[at + 3]!;
      designators.push({
        protocol: d[at]! >> 4,
        codeSet: d[at]! & 0x0f,
        piv: (d[at + 1]! & 0x80) !== 0,
        assoc: (d[at + 1]! >> 4) & 0x03,
        type: d[at + 1]! & 0x0f,
        value: d.subarray(at + 4, at + 4 + len),
      });
      at += 4 + len;
    }
    const naa = designators.find((x) => x.type === 3)!;
    expect(naa).toMatchObject({ codeSet: 1, assoc: 0 });
    expect(naa.value.length).toBe(16);
    expect(naa.value[0]! >> 4).toBe(6);
    expect(naa.value.toString('hex')).toBe('6123456789abcdeffedcba9876543210');

    const t10 = designators.find((x) => x.type === 1)!;
    expect(t10).toMatchObject({ codeSet: 2, assoc: 0 });
    expect(t10.value.toString('ascii')).toBe('HIVEBOOTHB-0001-TEST');

    const name = designators.find((x) => x.type === 8)!;
    expect(name).toMatchObject({ codeSet: 3, piv: true, assoc: 2, protocol: 5 });
    expect(name.value.length % 4).toBe(0);
    expect(name.value.toString('utf8').replace(/\0+$/, '')).toBe('iqn.2024-01.io.hiveboot:node-7');
  });

  it('0xB0 advertises the limits we enforce; unmap limits only on a thin unit', async () => {
    const thick = await vpd(0xb0, {}, { maxTransferBlocks: 4096, optimalTransferBlocks: 2048 });
    expect(thick.readUInt16BE(2)).toBe(0x3c);
    expect(thick[4]! & 0x01).toBe(0); // WSNZ
    expect(thick.readUInt16BE(6)).toBe(8); // optimal granularity: 4 KiB
    expect(thick.readUInt32BE(8)).toBe(4096);
    expect(thick.readUInt32BE(12)).toBe(2048);
    expect(thick.readUInt32BE(20)).toBe(0); // MAXIMUM UNMAP LBA COUNT
    expect(thick.readUInt32BE(24)).toBe(0);
    expect(thick.readBigUInt64BE(36)).toBe(BigInt(1 << 20)); // MAXIMUM WRITE SAME LENGTH

    const thin = await vpd(0xb0, { thin: true }, { maxUnmapBlocks: 8192, maxUnmapDescriptors: 64 });
    expect(thin.readUInt32BE(20)).toBe(8192);
    expect(thin.readUInt32BE(24)).toBe(64);
    expect(thin.readUInt32BE(28)).toBe(8); // OPTIMAL UNMAP GRANULARITY
    expect(thin[32]! & 0x80).toBe(0x80); // UGAVALID
  });

  it('0xB1 reports a non-rotating medium', async () => {
    const d = await vpd(0xb1);
    expect(d.readUInt16BE(4)).toBe(0x0001);
  });

  it('0xB2 reports UNMAP, WRITE SAME unmapping and LBPRZ on a thin unit, nothing on a thick one', async () => {
    const thin = await vpd(0xb2, { thin: true });
    expect(thin[5]! & 0x80).toBe(0x80); // LBPU
    expect(thin[5]! & 0x40).toBe(0x40); // LBPWS
    expect(thin[5]! & 0x20).toBe(0x20); // LBPWS10
    expect((thin[5]! >> 2) & 0x07).toBe(1); // LBPRZ 001b
    expect(thin[5]! & 0x02).toBe(0); // no ANC_SUP
    expect(thin[6]! & 0x07).toBe(2); // thin provisioned
    const thick = await vpd(0xb2);
    expect(thick[5]).toBe(0);
    expect(thick[6]! & 0x07).toBe(0);
  });
});
