// The Linux initiator every hiveboot host runs — open-iscsi in a Debian kernel, inside a QEMU guest
// booted from the golden image — against the built-in target: CHAP login, mkfs.ext4, a write and
// verify workload, and two restarts of the target process in the middle of it (SIGTERM, then
// kill -9), which open-iscsi rides out by logging in again (same ISID, TSIH 0: session
// reinstatement). Passes only if the guest's kernel log has no I/O error and every file verifies.
//
// The guest boots the image's kernel and initramfs directly with the image as a snapshot disk
// (nothing is written to it); the LUN under test is a second disk the guest logs into with
// iscsiadm. Its network is QEMU user mode with restrict=on: the guest reaches nothing but
// 10.0.2.100:3260, which QEMU relays to the target on 127.0.0.1. The guest is driven by a script
// passed through fw_cfg and run by systemd.run= (the test's kernel command line, not the image).
//
// The same boot also proves the image's own first-boot agent: the guest boots the image's
// multi-user target with hiveboot.url= pointing at a stand-in for hiveboot's /v1/hosts/self routes
// (10.0.2.101:8080, relayed to this test), and the agent must fetch its config, apply it and report.
//
// The guest, its script and the checks every restart run must pass are in support/open-iscsi-guest.ts
// (test/e2e/restart-under-io.test.ts runs the same workload across restarts of the whole daemon).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Static } from 'typebox';
import type { SelfConfig } from '../../src/http/routes/v1/self.js';
import { spawnTestTarget, type ChildTarget, type TestTargetSpec } from '../support/iscsi-target.js';
import { canRunIscsiGuest, expectWorkloadSurvived, followWorkload, prepareGuestBoot, startIscsiGuest, type RestartKind, type Restartable } from '../support/open-iscsi-guest.js';
import type { GoldenImage, LinuxGuest } from '../support/vm.js';

const TARGET = 'iqn.2026-01.io.hiveboot:vm-w1';
const INITIATOR = 'iqn.2026-01.io.hiveboot:vm-w1-host';
const CHAP = { user: 'hb-vmw1user', secret: 'vmw1secret01x' };
const FILES = 48; // 1 MiB each
const RESTART_AT = { graceful: 12, kill: 30 }; // after the guest reports this many files written
const PORTAL = '10.0.2.100:3260'; // the guest's view; QEMU relays it to 127.0.0.1:<port>
const HIVEBOOT = '10.0.2.101:8080'; // the stand-in for hiveboot's metadata routes, relayed likewise
/** Typed as hiveboot's own response schema, so the stand-in cannot drift from the real route. */
const HOST_CONFIG: Static<typeof SelfConfig> = {
  mac: '52:54:00:00:0e:01',
  hostname: 'vm-w1',
  nodeName: 'vm-w1-node',
  labels: { role: 'worker', 'hiveboot.io/test': 'yes' },
  k3s: { serverUrl: 'https://10.0.2.102:6443', hasToken: true },
  dropIn: {
    path: '/etc/rancher/k3s/config.yaml.d/50-hiveboot.yaml',
    content:
      '# written by hiveboot for 52:54:00:00:0e:01\nserver: https://10.0.2.102:6443\ntoken: K10test::server:secret\n' +
      'node-name: vm-w1-node\nnode-label:\n  - role=worker\n  - hiveboot.io/test=yes\n',
  },
};

/** hiveboot's /v1/hosts/self routes as the agent sees them: the first GET fails, so it must retry. */
async function startMetadataStandIn(): Promise<{ server: Server; port: number; requests: string[]; events: { stage: string; message: string; at: number }[] }> {
  const requests: string[] = [];
  const events: { stage: string; message: string; at: number }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      requests.push(`${req.method} ${req.url}`);
      if (req.method === 'GET' && req.url === '/healthz') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"status":"ok"}');
      } else if (req.method === 'GET' && req.url === '/v1/hosts/self/config') {
        const first = requests.filter((r) => r === 'GET /v1/hosts/self/config').length === 1;
        res.writeHead(first ? 503 : 200, { 'content-type': 'application/json' });
        res.end(first ? '{"error":"not ready"}' : JSON.stringify(HOST_CONFIG));
      } else if (req.method === 'POST' && req.url === '/v1/hosts/self/events') {
        events.push({ ...(JSON.parse(body) as { stage: string; message: string }), at: performance.now() });
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end('{}');
      } else {
        res.writeHead(404);
        res.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, requests, events };
}

/** The built-in target as a child process (spawnTestTarget), so it can be killed and started again. */
class TargetProcess implements Restartable {
  private target?: ChildTarget;
  constructor(
    private spec: TestTargetSpec,
    private readonly logFile: string,
  ) {}

  get port(): number {
    return this.spec.port!;
  }

  async start(): Promise<void> {
    this.target = await spawnTestTarget(this.spec);
    // Every restart listens on the port the first start was given.
    this.spec = { ...this.spec, port: this.target.port };
  }

  async stop(kind: RestartKind): Promise<void> {
    if (!this.target) return;
    await this.target.kill(kind === 'graceful' ? 'SIGTERM' : 'SIGKILL');
    writeFileSync(this.logFile, this.target.stderr(), { flag: 'a' });
  }
}

/** After the workload: the image's hiveboot-agent has been running beside it (multi-user.target, hiveboot.url=). */
const AGENT_CHECKS = `for i in $(seq 1 120); do [ -f /etc/rancher/k3s/config.yaml.d/50-hiveboot.yaml ] && break; sleep 1; done
say "agent hostname=$(hostname) etc-hostname=$(cat /etc/hostname 2>/dev/null) hosts=$(grep -c '^127.0.1.1.*vm-w1' /etc/hosts)"
say "agent dropin-mode=$(stat -c %a /etc/rancher/k3s/config.yaml.d/50-hiveboot.yaml 2>/dev/null) node-name=$(sed -n 's/^node-name: //p' /etc/rancher/k3s/config.yaml.d/50-hiveboot.yaml 2>/dev/null)"
say "agent labels=$(grep -c '^  - ' /etc/rancher/k3s/config.yaml.d/50-hiveboot.yaml 2>/dev/null) k3s-agent=$(systemctl is-active k3s-agent.service)"
say "machine-id=$(cat /etc/machine-id | wc -c)"`;

describe.skipIf(!canRunIscsiGuest)('open-iscsi in a Debian guest against the built-in target', () => {
  let dir: string;
  let image: GoldenImage;
  let boot: { kernel: string; initrd: string };
  let target: TargetProcess;
  let guest: LinuxGuest | undefined;
  let metadata: Awaited<ReturnType<typeof startMetadataStandIn>>;
  let g: LinuxGuest;

  beforeAll(async () => {
    dir = mkdtempSync('/var/tmp/hiveboot-vm-');
    ({ image, boot } = await prepareGuestBoot(dir));
    target = new TargetProcess(
      {
        backing: { kind: 'file', path: join(dir, 'lun.img'), size: 256 * 1024 * 1024 },
        port: 0,
        targets: [{ name: TARGET, acl: [INITIATOR], chap: CHAP }],
      },
      join(dir, 'target.log'),
    );
    await target.start();
    metadata = await startMetadataStandIn();
  }, 30 * 60_000);

  afterAll(async () => {
    await guest?.kill();
    await target?.stop('kill');
    metadata?.server.close();
    if (dir && !process.env.HIVEBOOT_TEST_KEEP) rmSync(dir, { recursive: true, force: true });
  });

  it('logs in with CHAP, rides out a SIGTERM and a kill -9 restart of the target, no I/O error, data verified', async () => {
    guest = startIscsiGuest({
      dir,
      image,
      boot,
      workload: { portal: PORTAL, target: TARGET, initiator: INITIATOR, chap: CHAP, files: FILES, epilogue: AGENT_CHECKS },
      forwards: { [PORTAL]: target.port, [HIVEBOOT]: metadata.port },
      kernelArgs: `hiveboot.url=http://${HIVEBOOT}`,
    });
    g = guest;
    const run = await followWorkload(guest, { restartAt: RESTART_AT, target, what: 'target' });
    guest = undefined;
    expectWorkloadSurvived(run, FILES);
  }, 30 * 60_000);

  it("the image's agent found hiveboot from hiveboot.url=, applied the host's config and reported its stages", () => {
    expect(g, 'the VM test above did not run to the end').toBeDefined();
    const all = g.lines.map((l) => l.text);
    const marker = (name: string) => all.find((l) => l.startsWith(`HBTEST ${name}`)) ?? `(no HBTEST ${name} line)`;
    console.log(`agent: ${metadata.requests.join(', ')}\n${metadata.events.map((e) => `${e.stage}: ${e.message}`).join('\n')}`);
    // 503 first (not ready): the agent says it is up, waits, asks again.
    expect(metadata.requests.filter((r) => r === 'GET /v1/hosts/self/config').length).toBeGreaterThanOrEqual(2);
    // It says it is up before it asks for its configuration (after finding hiveboot alive at /healthz).
    expect(metadata.requests.slice(0, 3)).toEqual(['GET /healthz', 'POST /v1/hosts/self/events', 'GET /v1/hosts/self/config']);
    expect(metadata.events.map((e) => e.stage)).toEqual(['os-up', 'config-applied']);
    // This image has no K3s binary: the agent says so instead of reporting k3s-started.
    expect(metadata.events[1]!.message).toMatch(
      /^hostname vm-w1, K3s drop-in \/etc\/rancher\/k3s\/config\.yaml\.d\/50-hiveboot\.yaml \(server https:\/\/10\.0\.2\.102:6443, node-name vm-w1-node, join token\), K3s NOT installed/,
    );
    expect(all.some((l) => /HIVEBOOT-READY host=vm-w1 node=vm-w1-node$/.test(l))).toBe(true);
    expect(marker('agent hostname')).toBe('HBTEST agent hostname=vm-w1 etc-hostname=vm-w1 hosts=1');
    expect(marker('agent dropin')).toBe('HBTEST agent dropin-mode=600 node-name=vm-w1-node');
    expect(marker('agent labels')).toBe('HBTEST agent labels=2 k3s-agent=inactive');
    expect(marker('machine-id')).toBe('HBTEST machine-id=33');
  });
});

