import Database from 'better-sqlite3';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Inventory } from '../../src/inventory/index.js';
import { NetLab } from '../support/netns.js';
import { timeline, waitForTimeline } from '../support/timeline.js';

/**
 * Full-DHCP mode against busybox udhcpc, in network namespaces this test makes: the daemon in one,
 * a client in another, joined by a veth pair. udhcpc's script really configures the address it is
 * given, so renewals travel by unicast as they would on a real network.
 */
const RESERVED_MAC = '52:54:00:42:00:01';
const UNKNOWN_MAC = '52:54:00:42:00:99';

describe.skipIf(!NetLab.available())('full DHCP with busybox udhcpc (network namespaces)', () => {
  const lab = new NetLab();
  let dir: string;
  let srv: string;
  let cliA: string;
  let cliB: string;
  let cliOther: string;
  let daemon: ChildProcess;
  let yaml: string;
  let dbPath: string;

  const udhcpcScript = () => {
    const path = join(dir, 'udhcpc.sh');
    writeFileSync(
      path,
      `#!/bin/sh
# busybox udhcpc hook: apply the lease for real, and log what the server sent.
case "$1" in
  deconfig) ip addr flush dev "$interface" ;;
  bound|renew) ip addr flush dev "$interface"; ip addr add "$ip/$subnet" dev "$interface" ;;
esac
echo "$1 ip=$ip subnet=$subnet router=$router dns=$dns domain=$domain hostname=$hostname lease=$lease serverid=$serverid siaddr=$siaddr boot_file=$boot_file" >> "$OUT"
`,
    );
    chmodSync(path, 0o755);
    return path;
  };

  const startDaemon = async () => {
    ({ process: daemon } = await lab.hiveboot(srv, dir, yaml));
  };
  const stopDaemon = async () => {
    const closed = new Promise((r) => daemon.once('close', r));
    daemon.kill('SIGTERM');
    await closed;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hb-dhcp-full-'));
    srv = lab.ns('srv');
    cliA = lab.ns('a');
    cliB = lab.ns('b');
    cliOther = lab.ns('other');
    // Three clients on a bridge behind boot0 would be closer to a LAN; one veth each is enough here.
    lab.ip(srv, 'link', 'add', 'br0', 'type', 'bridge');
    lab.ip(srv, 'addr', 'add', '10.77.0.1/24', 'dev', 'br0');
    lab.ip(srv, 'link', 'set', 'br0', 'up');
    lab.link({ ns: srv, ifname: 'pa' }, { ns: cliA, ifname: 'eth0' });
    lab.link({ ns: srv, ifname: 'pb' }, { ns: cliB, ifname: 'eth0' });
    lab.ip(srv, 'link', 'set', 'pa', 'master', 'br0');
    lab.ip(srv, 'link', 'set', 'pb', 'master', 'br0');
    lab.ip(cliA, 'link', 'set', 'eth0', 'address', UNKNOWN_MAC);
    lab.ip(cliB, 'link', 'set', 'eth0', 'address', RESERVED_MAC);
    // A second server interface that is NOT in dhcp.interfaces: its client must get nothing.
    lab.link({ ns: srv, ifname: 'other0', cidr: '10.78.0.1/24' }, { ns: cliOther, ifname: 'eth0' });

    dbPath = join(dir, 'state', 'hiveboot.db');
    const inv = Inventory.open(dbPath);
    inv.profiles.create({ name: 'worker' });
    inv.hosts.create({ mac: RESERVED_MAC, hostname: 'w42', profile: 'worker', ip: '10.77.0.42' });
    inv.close();
    yaml = `http: { listen: 127.0.0.1, port: 18480 }
log: { level: debug }
dhcp:
  mode: full
  interfaces: [br0]
  subnets:
    - network: 10.77.0.0/24
      range: { start: 10.77.0.100, end: 10.77.0.110 }
      router: 10.77.0.1
      dnsServers: [10.77.0.1]
      domain: lab.test
      leaseSeconds: 120
`;
    await startDaemon();
  }, 60_000);

  afterAll(async () => {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs udhcpc once (-q: quit with a lease, -n: fail without one) and returns its script log. */
  const leaseOnce = async (ns: string, name: string) => {
    const out = join(dir, `${name}.log`);
    const run = await lab.run(ns, 'busybox', ['udhcpc', '-i', 'eth0', '-f', '-q', '-n', '-t', '3', '-T', '1', '-A', '1', '-s', udhcpcScript()], {
      timeoutMs: 20_000,
    });
    return { ...run, log: existsSync(out) ? readFileSync(out, 'utf8') : '', out };
  };

  const events = (mac: string) => timeline(dbPath, mac, 'dhcp');
  const lease = (ip: string) => {
    const db = new Database(dbPath, { readonly: true, fileMustExist: true });
    try {
      return db.prepare('SELECT * FROM leases WHERE ip = ?').get(ip) as { mac: string; state: string } | undefined;
    } finally {
      db.close();
    }
  };

  it('gives an unknown machine an address from the dynamic range with the network settings', async () => {
    process.env.OUT = join(dir, 'a.log');
    const r = await leaseOnce(cliA, 'a');
    expect(r.code, r.stderr).toBe(0);
    expect(r.log).toMatch(/^bound ip=10\.77\.0\.100 subnet=255\.255\.255\.0 router=10\.77\.0\.1 dns=10\.77\.0\.1 domain=lab\.test hostname= lease=120 serverid=10\.77\.0\.1/m);
    expect(lab.ip(cliA, 'addr', 'show', 'eth0')).toContain('10.77.0.100/24');
    expect(lease('10.77.0.100')).toMatchObject({ mac: UNKNOWN_MAC, state: 'bound' });
    // The timeline is written just after the replies (grouped every few ms): wait for it.
    const ev = (await waitForTimeline(dbPath, UNKNOWN_MAC, (e) => e.some((x) => /ack 10\.77\.0\.100/.test(x.message)), 5000)).map((e) => e.message);
    expect(ev.some((m) => /^discover \(full\): offer 10\.77\.0\.100 on br0/.test(m)), ev.join('\n')).toBe(true);
    expect(ev.some((m) => /^request \(full\): ack 10\.77\.0\.100 on br0/.test(m)), ev.join('\n')).toBe(true);
  });

  it('gives a registered host its reserved address and its host name', async () => {
    process.env.OUT = join(dir, 'b.log');
    const r = await leaseOnce(cliB, 'b');
    expect(r.code, r.stderr).toBe(0);
    expect(r.log).toMatch(/^bound ip=10\.77\.0\.42 .*hostname=w42 /m);
    expect(lease('10.77.0.42')).toMatchObject({ mac: RESERVED_MAC, state: 'bound' });
  });

  it('renews over unicast, and a restarted daemon still knows the lease', async () => {
    process.env.OUT = join(dir, 'renew.log');
    const client = lab.spawn(cliA, 'busybox', ['udhcpc', '-i', 'eth0', '-f', '-t', '3', '-T', '1', '-s', udhcpcScript()], { ...process.env });
    const log = () => (existsSync(process.env.OUT!) ? readFileSync(process.env.OUT!, 'utf8') : '');
    const until = async (re: RegExp) => {
      for (let i = 0; i < 100 && !re.test(log()); i++) await new Promise((r) => setTimeout(r, 100));
      expect(log()).toMatch(re);
    };
    await until(/^bound ip=10\.77\.0\.100 /m);

    await stopDaemon();
    await startDaemon();
    client.kill('SIGUSR1'); // busybox udhcpc: renew now
    await until(/^renew ip=10\.77\.0\.100 /m);
    await waitForTimeline(dbPath, UNKNOWN_MAC, (e) => e.some((x) => x.stage === 'dhcp' && /^renewing/.test(x.reason)), 5000);
    const acks = events(UNKNOWN_MAC).filter((e) => /ack 10\.77\.0\.100/.test(e.message));
    expect(acks.at(-1)!.reason).toMatch(/^renewing: lease 120 s/);

    client.kill('SIGUSR2'); // release
    for (let i = 0; i < 50 && lease('10.77.0.100')?.state !== 'released'; i++) await new Promise((r) => setTimeout(r, 100));
    expect(lease('10.77.0.100')).toMatchObject({ state: 'released' });
    client.kill('SIGTERM');
  });

  it('answers nothing on an interface that is not in dhcp.interfaces', async () => {
    process.env.OUT = join(dir, 'other.log');
    const r = await leaseOnce(cliOther, 'other');
    expect(r.code).not.toBe(0);
    expect(r.log).not.toMatch(/^bound/m);
  });
});
