import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PolicyConfig } from '../../src/boot/policy.js';
import { DEFAULT_TEMPLATES_DIR, TemplateError, TemplateSet } from '../../src/boot/render.js';
import { BootService, type BootServiceOptions, type ScriptRequest, type ScriptResult } from '../../src/boot/service.js';
import { Inventory } from '../../src/inventory/index.js';
import { ValidationError } from '../../src/model/errors.js';
import type { DiskInput, EventView } from '../../src/model/schemas.js';
import { commandLines, expectWellFormedIpxe } from './ipxe-structure.js';

const shipped = TemplateSet.fromDirectory(DEFAULT_TEMPLATES_DIR);

const MAC = '52:54:00:aa:bb:cc';
const BASE = 'http://192.0.2.1:8080';
const SELF = `${BASE}/boot/${MAC}.ipxe`;
const IP = '192.0.2.50';
const TARGET = 'iqn.2003-01.org.linux-iscsi.gw:worker-1';
const PREFIX = 'iqn.2024-01.io.hiveboot';

const DISK: DiskInput = {
  portals: ['192.0.2.10:3260', '[2001:db8::10]:3260'],
  targetIqn: TARGET,
  chapUser: 'worker-1-user',
  chapSecret: 'secret-123456',
};

let dir: string;
let inventory: Inventory;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hiveboot-boot-'));
  inventory = Inventory.open(join(dir, 'hiveboot.db'));
});

afterEach(() => {
  inventory.close();
  rmSync(dir, { recursive: true, force: true });
});

function service(
  policy: Partial<PolicyConfig> = {},
  opts: Partial<Omit<BootServiceOptions, 'policy'>> = {},
): BootService {
  return new BootService(inventory, {
    policy: { discovery: true, autoEnroll: false, defaultProfile: 'worker', initiatorIqnPrefix: PREFIX, ...policy },
    retrySeconds: 7,
    maxDiscovered: 100,
    templates: () => shipped,
    ...opts,
  });
}

function request(overrides: Partial<ScriptRequest> = {}): ScriptRequest {
  return { sourceIp: IP, baseUrl: BASE, facts: {}, ...overrides };
}

function registerReady(disk: DiskInput = DISK, profile: Parameters<Inventory['profiles']['create']>[0] = { name: 'worker' }): void {
  inventory.profiles.create(profile);
  const host = inventory.hosts.create({ mac: MAC, hostname: 'worker-1', profile: profile.name, disk });
  expect(host.state).toBe('ready');
}

function scriptEvents(mac = MAC): EventView[] {
  return inventory.events.forMac(mac, { limit: 1000 }).items.filter((e) => e.stage === 'script');
}

/** The script, checked to be well formed before any test looks at its content. */
function ask(svc: BootService, mac = MAC, req: ScriptRequest = request()): ScriptResult {
  const result = svc.hostScript(mac, req);
  expectWellFormedIpxe(result.script);
  return result;
}

describe('a registered, ready host', () => {
  it('gets a sanboot script with its initiator name, CHAP credentials and one URI per portal', () => {
    registerReady();
    const result = ask(service());
    expect(result).toMatchObject({ decision: 'boot', mac: MAC });
    const lines = commandLines(result.script);
    expect(lines).toContain(`set initiator-iqn ${PREFIX}:worker-1`);
    expect(lines).toContain('set username worker-1-user');
    expect(lines).toContain('set password secret-123456');
    expect(lines).toContain(`sanboot iscsi:192.0.2.10::3260:0:${TARGET} iscsi:[2001:db8::10]::3260:0:${TARGET} || goto failed`);
    expect(lines.filter((l) => l.startsWith('sanboot'))).toHaveLength(1);
    // After a failed sanboot, the machine waits and asks again rather than dropping to a prompt.
    expect(lines).toContain('sleep 7');
    expect(lines).toContain(`chain --autofree --replace ${SELF}`);
  });

  it('withholds the script (and its secret) from a caller that is not the host, and says why on the timeline', () => {
    registerReady();
    const verifyCaller = (mac: string, ip: string | null) =>
      ip === IP ? ({ ok: true, how: 'test' } as const) : ({ ok: false, reason: `${ip} is not ${mac}` } as const);
    const svc = service({}, { verifyCaller });
    expect(ask(svc).decision).toBe('boot');
    const stranger = svc.hostScript(MAC, request({ sourceIp: '192.0.2.99' }));
    expect(stranger.decision).toBe('wait');
    expect(stranger.script).not.toContain('secret-123456');
    expect(stranger.script).not.toContain('sanboot');
    const events = inventory.events.forMac(MAC, {}).items;
    expect(events[0]?.reason).toBe(`boot script withheld: 192.0.2.99 is not ${MAC}`);
  });

  it("uses the host's own initiator IQN when it has one", () => {
    registerReady();
    inventory.hosts.update(MAC, { initiatorIqn: 'iqn.1991-05.com.microsoft:thin-7' });
    expect(commandLines(ask(service()).script)).toContain('set initiator-iqn iqn.1991-05.com.microsoft:thin-7');
  });

  it('sets no reverse credentials without mutual CHAP', () => {
    registerReady();
    const script = ask(service()).script;
    expect(script).not.toContain('reverse-username');
    expect(script).not.toContain('reverse-password');
  });

  it('sets reverse-username and reverse-password with mutual CHAP', () => {
    registerReady({ ...DISK, mutualUser: 'target-user', mutualSecret: 'target-secret1' });
    const lines = commandLines(ask(service()).script);
    expect(lines).toContain('set reverse-username target-user');
    expect(lines).toContain('set reverse-password target-secret1');
  });

  it('sets no credentials at all for a disk without CHAP', () => {
    registerReady({ portals: ['192.0.2.10'], targetIqn: TARGET });
    const script = ask(service()).script;
    expect(script).not.toMatch(/set (username|password)/);
    expect(commandLines(script)).toContain(`sanboot iscsi:192.0.2.10::3260:0:${TARGET} || goto failed`);
  });

  it('boots a non-zero LUN with the LUN written as iPXE reads it (hex)', () => {
    registerReady({ ...DISK, portals: ['192.0.2.10'], lun: 12 });
    expect(commandLines(ask(service()).script)).toContain(`sanboot iscsi:192.0.2.10::3260:c:${TARGET} || goto failed`);
  });

  it('has no --filename and no platform test when the profile sets no efiFilename', () => {
    registerReady();
    const script = ask(service()).script;
    expect(script).not.toContain('--filename');
    expect(script).not.toContain('iseq');
  });

  it('passes --filename only inside the `iseq ${platform} efi` branch when the profile sets efiFilename', () => {
    registerReady(DISK, { name: 'worker', efiFilename: '/EFI/BOOT/BOOTX64.EFI' });
    const lines = commandLines(ask(service()).script);
    const iseq = lines.indexOf('iseq ${platform} efi || goto plain');
    const plain = lines.indexOf(':plain');
    const uris = `iscsi:192.0.2.10::3260:0:${TARGET} iscsi:[2001:db8::10]::3260:0:${TARGET}`;
    const efi = lines.indexOf(`sanboot --filename \\EFI\\BOOT\\BOOTX64.EFI ${uris} || goto failed`);
    const bios = lines.indexOf(`sanboot ${uris} || goto failed`);
    expect(iseq).toBeGreaterThanOrEqual(0);
    expect(efi).toBeGreaterThan(iseq);
    expect(plain).toBeGreaterThan(efi);
    expect(bios).toBeGreaterThan(plain);
    expect(lines.filter((l) => l.includes('--filename'))).toHaveLength(1);
  });

  it('records where it was seen and the facts it reported', () => {
    registerReady();
    ask(service(), MAC, request({ sourceIp: '192.0.2.77', facts: { platform: 'efi', buildarch: 'x86_64' } }));
    const h = inventory.hosts.get(MAC);
    expect(h.lastIp).toBe('192.0.2.77');
    expect(h.lastSeenAt).not.toBeNull();
    expect(h.facts).toMatchObject({ platform: 'efi', buildarch: 'x86_64' });
  });

  it('waits, naming the template, when its profile names a template that does not exist', () => {
    inventory.profiles.create({ name: 'worker', template: 'rescue' });
    inventory.hosts.create({ mac: MAC, hostname: 'worker-1', profile: 'worker', disk: DISK });
    const result = ask(service());
    expect(result.decision).toBe('wait');
    expect(result.script).not.toContain('sanboot');
    expect(scriptEvents()[0]!.reason).toBe('template rescue of profile worker does not exist');
  });

  it('boots with a template added on reload: templates are read through the getter on every request', () => {
    inventory.profiles.create({ name: 'worker', template: 'rescue' });
    inventory.hosts.create({ mac: MAC, hostname: 'worker-1', profile: 'worker', disk: DISK });
    let current = shipped;
    const svc = service({}, { templates: () => current });
    expect(ask(svc).decision).toBe('wait');
    const sources = Object.fromEntries(
      shipped.names().map((n) => [n, n === 'exit' ? '#!ipxe\nexit\n' : '#!ipxe\necho {{v mac}}\n']),
    );
    current = TemplateSet.fromSources({ ...sources, rescue: '#!ipxe\necho rescue {{v hostname}}\nexit\n' });
    const result = ask(svc);
    expect(result.decision).toBe('boot');
    expect(result.script).toBe('#!ipxe\necho rescue worker-1\nexit\n');
  });
});

describe('an unknown MAC', () => {
  it('with discovery on: gets the discovery script and is recorded as discovered with its facts', () => {
    const facts = { buildarch: 'x86_64', platform: 'efi', uuid: '1234-5678', manufacturer: 'HP', product: 't620', serial: 'CZ123' };
    const result = ask(service(), 'AA-BB-CC-00-11-22', request({ facts }));
    const mac = 'aa:bb:cc:00:11:22';
    expect(result).toMatchObject({ decision: 'discover', mac });
    const lines = commandLines(result.script);
    expect(lines).toContain(`imgfetch --name discover-report ${BASE}/v1/discover##params=discover || goto wait`);
    expect(lines).toContain('sleep 7');
    expect(lines).toContain(`chain --autofree --replace ${BASE}/boot/${mac}.ipxe`);
    // Nobody is at the console: the machine must not stop at a prompt.
    expect(lines.filter((l) => /^(prompt|shell|login)\b/.test(l))).toEqual([]);

    const h = inventory.hosts.get(mac);
    expect(h.state).toBe('discovered');
    expect(h.facts).toEqual(facts);
    expect(h.lastIp).toBe(IP);
    expect(h.hostname).toBeNull();
    expect(inventory.events.forMac(mac).items.map((e) => e.stage)).toEqual(expect.arrayContaining(['discover', 'script']));
  });

  it('with discovery and auto-enrolment off: exits and is not recorded as a host', () => {
    const result = ask(service({ discovery: false, autoEnroll: false }));
    expect(result.decision).toBe('exit');
    expect(commandLines(result.script)).toContain('exit');
    expect(inventory.hosts.find(MAC)).toBeUndefined();
    expect(scriptEvents()[0]!.reason).toMatch(/discovery is off/);
  });

  it('past boot.maxDiscovered: waits without being recorded, and the timeline says why', () => {
    const svc = service({}, { maxDiscovered: 1 });
    ask(svc, '52:54:00:00:00:01');
    const result = ask(svc, '52:54:00:00:00:02');
    expect(result.decision).toBe('wait');
    expect(result.script).toContain('sleep 7');
    expect(inventory.hosts.find('52:54:00:00:00:02')).toBeUndefined();
    expect(scriptEvents('52:54:00:00:00:02')[0]!.reason).toBe('too many discovered hosts, not recorded');
  });

  it('refuses a malformed MAC without recording anything', () => {
    expect(() => service().hostScript('not-a-mac', request())).toThrow(ValidationError);
    expect(inventory.hosts.list()).toEqual([]);
    expect(inventory.events.all().items).toEqual([]);
  });

  describe('with auto-enrolment on', () => {
    it('creates the host with the default profile and a node-<last6hex> host name, pending without a disk', () => {
      inventory.profiles.create({ name: 'thin' });
      const result = ask(service({ autoEnroll: true, defaultProfile: 'thin' }), '52:54:00:AB:CD:EF', request({ facts: { product: 't620' } }));
      const mac = '52:54:00:ab:cd:ef';
      const h = inventory.hosts.get(mac);
      expect(h).toMatchObject({ hostname: 'node-abcdef', profile: 'thin', state: 'pending', facts: { product: 't620' } });
      expect(result.decision).toBe('wait');
      expect(result.script).toContain('pending');
      expect(result.script).not.toContain('sanboot');
      expect(scriptEvents(mac)[0]!.reason).toBe('pending, waiting for a disk');
    });

    it('when the default profile does not exist: records the failure and leaves the machine discovered, waiting', () => {
      const result = ask(service({ autoEnroll: true, defaultProfile: 'missing' }));
      expect(result.decision).toBe('wait');
      expect(inventory.hosts.get(MAC).state).toBe('discovered');
      const enroll = inventory.events.forMac(MAC).items.find((e) => e.stage === 'enroll' && e.message === 'auto-enrolment failed');
      expect(enroll?.reason).toMatch(/profile: "missing" does not exist/);
    });
  });
});

describe('a known host that cannot boot yet', () => {
  it('discovered: waits, sleeping and re-chaining its own URL, with no prompt', () => {
    service().discover(MAC, {}, IP);
    const result = ask(service());
    expect(result.decision).toBe('wait');
    const lines = commandLines(result.script);
    expect(lines).toContain('sleep 7');
    expect(lines[lines.length - 1]).toBe(`chain --autofree --replace ${SELF}`);
    expect(result.script).toContain('discovered');
    expect(lines.filter((l) => /^(prompt|shell|login)\b/.test(l))).toEqual([]);
    expect(result.script).not.toContain('sanboot');
  });

  it('pending: waits, saying what is missing', () => {
    inventory.profiles.create({ name: 'worker' });
    inventory.hosts.create({ mac: MAC, hostname: 'worker-1', profile: 'worker' });
    const result = ask(service());
    expect(result.decision).toBe('wait');
    expect(commandLines(result.script)).toContain(`echo hiveboot: ${MAC} is pending: pending, waiting for a disk`);
  });

  it('disabled: gets a script that exits to the next boot device, and never its disk', () => {
    registerReady();
    inventory.hosts.update(MAC, { state: 'disabled' });
    const result = ask(service());
    expect(result.decision).toBe('exit');
    expect(commandLines(result.script)).toContain('exit');
    expect(result.script).not.toContain('sanboot');
    expect(result.script).not.toContain('secret-123456');
  });
});

describe('the timeline', () => {
  it.each([
    ['boot', () => registerReady(), /^ready: profile worker, template sanboot, 2 portal\(s\)$/],
    ['discover', () => {}, /^unknown MAC: reporting it for approval$/],
    ['wait', () => service().discover(MAC, {}, IP), /^discovered, waiting for approval$/],
    [
      'exit',
      () => {
        registerReady();
        inventory.hosts.update(MAC, { state: 'disabled' });
      },
      /^host is disabled/,
    ],
  ] as const)('a %s decision writes a "script" event with its reason and source IP', (kind, arrange, reason) => {
    arrange();
    const decisions: string[] = [];
    const result = ask(service({}, { onDecision: (d) => decisions.push(d) }));
    expect(result.decision).toBe(kind);
    expect(decisions).toEqual([kind]);
    const events = scriptEvents();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ mac: MAC, stage: 'script', message: `script: ${kind}`, sourceIp: IP });
    expect(events[0]!.reason).toMatch(reason);
  });

  it('a waiting machine retrying 10 times in a row leaves one "script" event', () => {
    inventory.profiles.create({ name: 'worker' });
    inventory.hosts.create({ mac: MAC, hostname: 'worker-1', profile: 'worker' });
    const svc = service();
    for (let i = 0; i < 10; i++) expect(ask(svc).decision).toBe('wait');
    expect(scriptEvents()).toHaveLength(1);
  });

  it('a changed decision is written even inside the deduplication window', () => {
    inventory.profiles.create({ name: 'worker' });
    inventory.hosts.create({ mac: MAC, hostname: 'worker-1', profile: 'worker' });
    const svc = service();
    for (let i = 0; i < 3; i++) ask(svc);
    inventory.hosts.update(MAC, { disk: DISK });
    for (let i = 0; i < 3; i++) expect(ask(svc).decision).toBe('boot');
    expect(scriptEvents().map((e) => e.message)).toEqual(['script: boot', 'script: wait']);
  });

  it('the same decision from another IP is written again', () => {
    service().discover(MAC, {}, IP);
    const svc = service();
    ask(svc, MAC, request({ sourceIp: '192.0.2.50' }));
    ask(svc, MAC, request({ sourceIp: '192.0.2.51' }));
    expect(scriptEvents().map((e) => e.sourceIp)).toEqual(['192.0.2.51', '192.0.2.50']);
  });

  it('deduplication is per machine: another machine waiting is still recorded', () => {
    const svc = service();
    svc.discover('52:54:00:00:00:01', {}, IP);
    svc.discover('52:54:00:00:00:02', {}, IP);
    for (let i = 0; i < 3; i++) {
      ask(svc, '52:54:00:00:00:01');
      ask(svc, '52:54:00:00:00:02');
    }
    expect(scriptEvents('52:54:00:00:00:01')).toHaveLength(1);
    expect(scriptEvents('52:54:00:00:00:02')).toHaveLength(1);
  });
});

describe('a stored value that is unsafe at render time', () => {
  it('gets a wait script with no injected line, and the event says the script could not be rendered', () => {
    registerReady();
    // Bypass validation as a hand edit or a bug elsewhere would.
    inventory.db.prepare('UPDATE hosts SET hostname = ? WHERE mac = ?').run('w1\nshell', MAC);
    const decisions: string[] = [];
    const result = ask(service({}, { onDecision: (d) => decisions.push(d) }));
    expect(result.decision).toBe('error');
    expect(decisions).toEqual(['error']);
    const lines = commandLines(result.script);
    expect(lines).not.toContain('shell');
    expect(result.script).not.toContain('sanboot');
    expect(result.script).not.toContain('secret-123456');
    expect(lines).toContain('sleep 7');
    expect(lines).toContain(`chain --autofree --replace ${SELF}`);
    const events = scriptEvents();
    expect(events).toHaveLength(1);
    expect(events[0]!.message).toBe('script: error');
    expect(events[0]!.reason).toMatch(/^cannot render the boot script: /);
    expect(events[0]!.reason).toContain('w1\\x0ashell');
  });

  it('an unsafe CHAP secret never reaches the script', () => {
    registerReady();
    inventory.db.prepare("UPDATE disks SET chap_secret = 'secret-1234 ${net0/ip}'").run();
    const result = ask(service());
    expect(result.decision).toBe('error');
    expect(result.script).not.toContain('secret-1234');
    expect(result.script).not.toContain('${net0/ip}');
    expect(result.script).not.toContain('sanboot');
  });
});

describe('bootstrapScript', () => {
  it('reports what iPXE knows about the machine and chains to its own script on the base URL', () => {
    const script = service().bootstrapScript('http://10.0.0.1:8080');
    expectWellFormedIpxe(script);
    for (const needle of ['${net0/mac}', '${buildarch', '${platform', '${uuid', '${manufacturer', '${product', '${serial', 'http://10.0.0.1:8080']) {
      expect(script).toContain(needle);
    }
    expect(script).toContain('chain --autofree --replace http://10.0.0.1:8080/boot/${net0/mac}.ipxe?');
    expect(commandLines(script)).toContain('sleep 7');
  });

  it('refuses a base URL that would add a line to the script', () => {
    expect(() => service().bootstrapScript('http://10.0.0.1\nshell')).toThrow(TemplateError);
  });
});
