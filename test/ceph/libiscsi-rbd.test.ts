// libiscsi's conformance suite (iscsi-test-cu --test=ALL) against the built-in target serving an RBD
// image through librbd: the same standard as the file backend (test/iscsi/libiscsi.test.ts), zero failures.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cephDevAvailable, useTestPool } from '../support/ceph-cluster.js';
import { startTestTarget, type TestTarget } from '../support/iscsi-target.js';
import { tool } from '../support/tool.js';

const TARGET = 'iqn.2026-01.io.hiveboot:rbd-w1';
const LIBISCSI = 'iqn.2007-10.com.github:sahlberg:libiscsi';
const INIT = 'iqn.2026-01.io.hiveboot:rbd-init';
const CHAP = { user: 'hb-rbduser01', secret: 'rbdsecret001x' };

describe.skipIf(!cephDevAvailable())('built-in target on an RBD image, with libiscsi', () => {
  const t = useTestPool();
  let target: TestTarget | undefined;

  beforeAll(async () => {
    const image = t.name('libiscsi');
    await t.pool.createImage(image, 64 * 1024 * 1024);
    target = await startTestTarget({
      backing: { kind: 'rbd', cluster: t.ceph.settings, pool: t.ceph.pool, image },
      // iscsi-test-cu logs in as iscsi-test, and as iscsi-test-2 for the persistent reservation tests.
      targets: [{ name: TARGET, acl: [`${LIBISCSI}:iscsi-test`, `${LIBISCSI}:iscsi-test-2`, INIT], chap: CHAP }],
    });
  }, 60_000);

  // Registered after useTestPool's: runs before it removes the image and lets go of the connection.
  afterAll(async () => {
    await target?.stop();
  });

  const url = () => `iscsi://${CHAP.user}%${CHAP.secret}@127.0.0.1:${target!.port}/${TARGET}/0`;

  it('identifies the unit as a thin 64 MiB disk', async () => {
    const r = await tool('iscsi-readcapacity16', ['-i', INIT, url()]);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('Total size:67108864');
    expect(r.out).toContain('LBPME:1 LBPRZ:1'); // thin, and deallocated blocks read as zeroes
  });

  it('passes all 230 of iscsi-test-cu --test=ALL', async () => {
    const started = performance.now();
    const r = await tool('iscsi-test-cu', ['-d', '--test=ALL', url()], 300_000);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const summary = /tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/.exec(r.out);
    expect(summary, r.out.slice(-2000)).not.toBeNull();
    const [, total, ran, passed, failed] = summary!.map(Number);
    // CUnit prints a failed assertion's file, line and condition; those lines name what broke.
    const failures = r.out.split('\n').filter((l) => /FAILED|^\s+\d+\. .*:\d+\s+-/.test(l));
    expect(failed, `${failed} failed in ${seconds} s:\n${failures.slice(0, 60).join('\n')}`).toBe(0);
    expect([total, ran, passed]).toEqual([230, 230, 230]);
    console.log(`iscsi-test-cu --test=ALL on RBD: ${passed}/${total} passed in ${seconds} s`);
  }, 330_000);
});
