// The built-in target against libiscsi's own tools (Debian libiscsi-bin): iscsi-ls, iscsi-inq and the
// iscsi-test-cu conformance suite — the initiator code QEMU and many tools use.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tool } from '../support/tool.js';
import { startTestTarget, type TestTarget } from '../support/iscsi-target.js';


/**
 * Names of the tests iscsi-test-cu reports as failed: CUnit ends a failed test's output with a line
 * "FAILED" (or "...FAILED" on the test's own line). "[FAILED]" inside a message is just a log line of
 * a negative test, which then ends with "passed".
 */
function failedTests(out: string): string[] {
  const names: string[] = [];
  for (const block of out.split(/\n(?=\s*Test: )/)) {
    const name = /^\s*Test: (\S+)/.exec(block)?.[1];
    if (!name) continue;
    const own = block.split(/\n(?=Suite:)/)[0]!;
    if (/^FAILED\s*$/m.test(own) || /\.\.\.FAILED\s*$/m.test(own)) names.push(name);
  }
  return names.sort();
}

const W1 = 'iqn.2026-01.io.hiveboot:w1';
const W2 = 'iqn.2026-01.io.hiveboot:w2';
const W3 = 'iqn.2026-01.io.hiveboot:w3-mutual';
const LIBISCSI = 'iqn.2007-10.com.github:sahlberg:libiscsi';
const INIT1 = 'iqn.2026-01.io.hiveboot:init1';
const INIT2 = 'iqn.2026-01.io.hiveboot:init2';
const W1_CHAP = { user: 'hb-w1user01', secret: 'w1secret0001x' };
const W2_CHAP = { user: 'hb-w2user02', secret: 'w2secret0002y' };
const W3_CHAP = { user: 'hb-w3user03', secret: 'w3secret0003z', mutual: { user: 'hb-target03', secret: 'targetsecret3' } };


describe('built-in target with libiscsi', () => {
  let dir: string;
  let target: TestTarget;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hiveboot-libiscsi-'));
    target = await startTestTarget({
      backing: { kind: 'file', path: join(dir, 'disk.img'), size: 64 * 1024 * 1024 },
      targets: [
        // libiscsi's test tools log in with fixed initiator names; a second one is used by the PR tests.
        { name: W1, acl: [INIT1, `${LIBISCSI}:iscsi-ls`, `${LIBISCSI}:iscsi-inq`, `${LIBISCSI}:iscsi-test`, `${LIBISCSI}:iscsi-test-2`], chap: W1_CHAP },
        { name: W2, acl: [INIT2], chap: W2_CHAP },
        { name: W3, acl: [`${LIBISCSI}:iscsi-inq`], chap: W3_CHAP },
      ],
    });
  });

  afterAll(async () => {
    await target?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const portal = () => `127.0.0.1:${target.port}`;

  it('discovery with a host\'s CHAP credentials lists only that host\'s target', async () => {
    const r = await tool('iscsi-ls', ['-i', INIT1, `iscsi://${W1_CHAP.user}%${W1_CHAP.secret}@${portal()}`]);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain(`Target:${W1} Portal:${portal()},1`);
    expect(r.out).not.toContain(W2);
    const r2 = await tool('iscsi-ls', ['-i', INIT2, `iscsi://${W2_CHAP.user}%${W2_CHAP.secret}@${portal()}`]);
    expect(r2.out).toContain(W2);
    expect(r2.out).not.toContain(W1);
  });

  it('logs in with the right CHAP credentials, with and without CRC32C digests', async () => {
    for (const args of ['', '?header_digest=crc32c']) {
      const r = await tool('iscsi-inq', [`iscsi://${W1_CHAP.user}%${W1_CHAP.secret}@${portal()}/${W1}/0${args}`]);
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain('Vendor:HIVEBOOT');
      expect(r.out).toContain('Peripheral Device Type:DIRECT_ACCESS');
    }
  });

  it.each([
    ['a wrong user', `hb-nobody01%${W1_CHAP.secret}`, 'Authentication failure'],
    ['a wrong secret', `${W1_CHAP.user}%wrongsecret01`, 'Authentication failure'],
    ['no CHAP at all', '', 'Authentication failure'],
    ["another host's credentials", `${W2_CHAP.user}%${W2_CHAP.secret}`, 'Authentication failure'],
  ])('refuses a login with %s', async (_what, creds, message) => {
    const r = await tool('iscsi-inq', [`iscsi://${creds ? `${creds}@` : ''}${portal()}/${W1}/0`]);
    expect(r.code).not.toBe(0);
    expect(r.out).toContain(message);
    expect(r.out).not.toContain('Vendor:HIVEBOOT');
  });

  it('refuses an initiator IQN outside the target ACL even with the right credentials', async () => {
    const r = await tool('iscsi-inq', ['-i', INIT2, `iscsi://${W1_CHAP.user}%${W1_CHAP.secret}@${portal()}/${W1}/0`]);
    expect(r.code).not.toBe(0);
    expect(r.out).toContain('Authorization failure');
  });

  it('mutual CHAP: the initiator accepts the right target secret and refuses a wrong one', async () => {
    const base = `iscsi://${W3_CHAP.user}%${W3_CHAP.secret}@${portal()}/${W3}/0`;
    const ok = await tool('iscsi-inq', [`${base}?target_user=${W3_CHAP.mutual.user}&target_password=${W3_CHAP.mutual.secret}`]);
    expect(ok.code, ok.out).toBe(0);
    expect(ok.out).toContain('Vendor:HIVEBOOT');
    const bad = await tool('iscsi-inq', [`${base}?target_user=${W3_CHAP.mutual.user}&target_password=notthesecret1`]);
    expect(bad.code).not.toBe(0);
    expect(bad.out).not.toContain('Vendor:HIVEBOOT');
  });

  const url = () => `iscsi://${W1_CHAP.user}%${W1_CHAP.secret}@${portal()}/${W1}/0`;

  // libiscsi 1.19 (Debian 12) has no SynchronizeCache10/16 families: SYNCHRONIZE CACHE is covered by
  // test/iscsi/scsi and by the crash test, which depends on it reaching stable storage.
  it('passes the iscsi-test-cu families the issue names', async () => {
    const families = [
      'SCSI.TestUnitReady', 'SCSI.Inquiry', 'SCSI.ReadCapacity10', 'SCSI.ReadCapacity16', 'SCSI.Read6', 'SCSI.Read10',
      'SCSI.Read12', 'SCSI.Read16', 'SCSI.Write10', 'SCSI.Write12', 'SCSI.Write16', 'SCSI.Verify10', 'SCSI.Verify16',
      'SCSI.WriteVerify10', 'SCSI.WriteVerify16', 'SCSI.ModeSense6',
      'SCSI.Unmap', 'SCSI.WriteSame10', 'SCSI.WriteSame16', 'SCSI.Prefetch10', 'SCSI.Prefetch16', 'SCSI.GetLBAStatus',
      'SCSI.Mandatory', 'iSCSI',
    ];
    const failures: string[] = [];
    for (const family of families) {
      const r = await tool('iscsi-test-cu', ['-d', `--test=${family}`, url()], 120_000);
      const summary = /tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/.exec(r.out);
      expect(summary, `${family}: ${r.out.slice(-500)}`).not.toBeNull();
      expect(Number(summary![2]), `${family} ran no test`).toBeGreaterThan(0);
      failures.push(...failedTests(r.out).map((t) => `${family}: ${t}`));
    }
    expect(failures).toEqual([]);
  }, 300_000);

  it('passes all 230 of iscsi-test-cu --test=ALL (tgtd: 222)', async () => {
    const r = await tool('iscsi-test-cu', ['-d', '--test=ALL', url()], 180_000);
    const summary = /tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/.exec(r.out);
    expect(summary, r.out.slice(-2000)).not.toBeNull();
    const [, total, ran, passed] = summary!.map(Number);
    expect(total).toBe(230);
    expect(ran).toBe(230);
    expect(failedTests(r.out)).toEqual([]);
    expect(passed).toBe(230);
  }, 240_000);
});
