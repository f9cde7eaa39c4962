import { describe, expect, it, vi } from 'vitest';
import { decide, iscsiUri, type BootContext, type Decision, type PolicyConfig } from '../../src/boot/policy.js';
import type { Disk, Host } from '../../src/inventory/index.js';
import { ValidationError } from '../../src/model/errors.js';
import type { ProfileView } from '../../src/model/schemas.js';

const MAC = '52:54:00:aa:bb:cc';
const TARGET = 'iqn.2003-01.org.linux-iscsi.gw:worker-1';
const AT = '2024-01-01T00:00:00.000Z';

const cfg: PolicyConfig = { discovery: true, autoEnroll: false, defaultProfile: 'worker', initiatorIqnPrefix: 'iqn.2024-01.io.hiveboot' };

function disk(overrides: Partial<Disk> = {}): Disk {
  return {
    source: 'manual',
    portals: ['192.0.2.10:3260'],
    targetIqn: TARGET,
    lun: 0,
    chapUser: 'worker-1-user',
    chapSecret: 'secret-123456',
    mutualUser: null,
    mutualSecret: null,
    updatedAt: AT,
    ...overrides,
  };
}

function host(overrides: Partial<Host> = {}): Host {
  return {
    id: 1,
    mac: MAC,
    hostname: 'worker-1',
    profile: 'worker',
    state: 'ready',
    labels: {},
    facts: {},
    initiatorIqn: null,
    ip: null,
    bootFile: null,
    lastIp: null,
    lastSeenAt: null,
    disk: disk(),
    createdAt: AT,
    updatedAt: AT,
    ...overrides,
  };
}

function profile(overrides: Partial<ProfileView> = {}): ProfileView {
  return {
    name: 'worker',
    description: '',
    template: 'sanboot',
    image: null,
    kernelArgs: '',
    k3sLabels: {},
    efiFilename: null,
    params: {},
    bootFile: null,
    createdAt: AT,
    updatedAt: AT,
    ...overrides,
  };
}

const allTemplates = () => true;

function boot(h: Host, p: ProfileView | undefined = profile(), c: PolicyConfig = cfg): Extract<Decision, { kind: 'boot' }> {
  const d = decide(h.mac, h, p, c, allTemplates);
  if (d.kind !== 'boot') throw new Error(`expected a boot decision, got ${d.kind}: ${d.reason}`);
  return d;
}

function contextOf(h: Host, p?: ProfileView, c?: PolicyConfig): BootContext {
  return boot(h, p, c).context;
}

describe('decide: a MAC we do not know', () => {
  it('is reported for approval when discovery is on', () => {
    const d = decide(MAC, undefined, undefined, { ...cfg, discovery: true, autoEnroll: false }, allTemplates);
    expect(d.kind).toBe('discover');
    expect(d.reason).toMatch(/unknown MAC/);
  });

  it('is enrolled with the default profile when auto-enrolment is on (even with discovery on)', () => {
    for (const discovery of [true, false]) {
      const d = decide(MAC, undefined, undefined, { ...cfg, discovery, autoEnroll: true, defaultProfile: 'thin-client' }, allTemplates);
      expect(d).toMatchObject({ kind: 'enroll', profile: 'thin-client' });
      expect(d.reason).toContain('thin-client');
    }
  });

  it('is sent to its next boot device when neither discovery nor auto-enrolment is on', () => {
    const d = decide(MAC, undefined, undefined, { ...cfg, discovery: false, autoEnroll: false }, allTemplates);
    expect(d.kind).toBe('exit');
    expect(d.reason).toMatch(/discovery is off/);
  });
});

describe('decide: a known host that cannot boot its disk', () => {
  it('disabled: exits, even though it has everything it needs to boot', () => {
    const d = decide(MAC, host({ state: 'disabled' }), profile(), cfg, allTemplates);
    expect(d.kind).toBe('exit');
    expect(d.reason).toMatch(/disabled/);
  });

  it('discovered: waits for approval', () => {
    const d = decide(MAC, host({ state: 'discovered', hostname: null, profile: null, disk: null }), undefined, cfg, allTemplates);
    expect(d).toMatchObject({ kind: 'wait', state: 'discovered' });
    expect(d.reason).toMatch(/approval/);
  });

  it('discovered with a full record still waits: approval is what lets it boot', () => {
    expect(decide(MAC, host({ state: 'discovered' }), profile(), cfg, allTemplates).kind).toBe('wait');
  });

  it.each([
    [{ disk: null }, ['a disk'], ['a hostname', 'a profile']],
    [{ profile: null }, ['a profile'], ['a hostname', 'a disk']],
    [{ hostname: null }, ['a hostname'], ['a profile', 'a disk']],
    [{ hostname: null, profile: null, disk: null }, ['a hostname', 'a profile', 'a disk'], []],
  ] as [Partial<Host>, string[], string[]][])('pending %o: waits, naming what is missing and only that', (missing, named, notNamed) => {
    const d = decide(MAC, host({ state: 'pending', ...missing }), profile(), cfg, allTemplates);
    expect(d).toMatchObject({ kind: 'wait', state: 'pending' });
    expect(d.reason).toMatch(/^pending, waiting for /);
    for (const what of named) expect(d.reason).toContain(what);
    for (const what of notNamed) expect(d.reason).not.toContain(what);
  });

  it('pending never boots, even with a complete record', () => {
    const d = decide(MAC, host({ state: 'pending' }), profile(), cfg, allTemplates);
    expect(d).toMatchObject({ kind: 'wait', state: 'pending', reason: 'pending' });
  });

  it('ready but without a disk (database edited by hand): waits instead of booting nothing', () => {
    expect(decide(MAC, host({ disk: null }), profile(), cfg, allTemplates)).toMatchObject({ kind: 'wait', state: 'ready' });
    expect(decide(MAC, host({ hostname: null }), profile(), cfg, allTemplates)).toMatchObject({ kind: 'wait', state: 'ready' });
  });

  it('ready whose profile does not exist: waits, naming the profile', () => {
    const d = decide(MAC, host({ profile: 'gone' }), undefined, cfg, allTemplates);
    expect(d).toMatchObject({ kind: 'wait', state: 'ready' });
    expect(d.reason).toBe('profile gone does not exist');
  });

  it("ready whose profile's template does not exist: waits, naming the template and the profile", () => {
    const hasTemplate = vi.fn((name: string) => name !== 'rescue');
    const d = decide(MAC, host(), profile({ name: 'worker', template: 'rescue' }), cfg, hasTemplate);
    expect(hasTemplate).toHaveBeenCalledWith('rescue');
    expect(d).toMatchObject({ kind: 'wait', state: 'ready' });
    expect(d.reason).toContain('template rescue');
    expect(d.reason).toContain('profile worker');
  });
});

describe('decide: a ready host boots its disk', () => {
  it("with its profile's template, and says so", () => {
    const d = boot(host({ disk: disk({ portals: ['192.0.2.10:3260', '192.0.2.11:3260'] }) }), profile({ name: 'worker', template: 'sanboot' }));
    expect(d.template).toBe('sanboot');
    expect(d.reason).toBe('ready: profile worker, template sanboot, 2 portal(s)');
  });

  it('uses a custom template when the profile names one that exists', () => {
    const d = decide(MAC, host(), profile({ template: 'sanboot-debug' }), cfg, (t) => t === 'sanboot-debug');
    expect(d).toMatchObject({ kind: 'boot', template: 'sanboot-debug' });
  });

  it('carries the host identity and target into the context', () => {
    const c = contextOf(host({ disk: disk({ lun: 3 }) }));
    expect(c).toMatchObject({ mac: MAC, hostname: 'worker-1', targetIqn: TARGET, lun: 3 });
  });

  it('initiator IQN defaults to <prefix>:<hostname>', () => {
    expect(contextOf(host({ hostname: 'worker-7' })).initiatorIqn).toBe('iqn.2024-01.io.hiveboot:worker-7');
    expect(contextOf(host(), profile(), { ...cfg, initiatorIqnPrefix: 'iqn.2020-05.lan.home' }).initiatorIqn).toBe('iqn.2020-05.lan.home:worker-1');
  });

  it("initiator IQN is the host's own when it has one", () => {
    expect(contextOf(host({ initiatorIqn: 'iqn.1991-05.com.microsoft:thin-7' })).initiatorIqn).toBe('iqn.1991-05.com.microsoft:thin-7');
  });

  it('one iSCSI URI per portal, in order (multipath)', () => {
    const c = contextOf(host({ disk: disk({ portals: ['192.0.2.10:3260', '192.0.2.11:3261', 'gw3.example'] }) }));
    expect(c.uris).toEqual([
      `iscsi:192.0.2.10::3260:0:${TARGET}`,
      `iscsi:192.0.2.11::3261:0:${TARGET}`,
      `iscsi:gw3.example::3260:0:${TARGET}`,
    ]);
  });

  it('IPv6 portals are written in brackets', () => {
    const c = contextOf(host({ disk: disk({ portals: ['[2001:db8::10]:3260', '192.0.2.10:3260'] }) }));
    expect(c.uris).toEqual([`iscsi:[2001:db8::10]::3260:0:${TARGET}`, `iscsi:192.0.2.10::3260:0:${TARGET}`]);
  });

  it('one-way CHAP: user and secret, no reverse credentials', () => {
    const c = contextOf(host({ disk: disk({ chapUser: 'worker-1-user', chapSecret: 'secret-123456' }) }));
    expect(c).toMatchObject({ username: 'worker-1-user', password: 'secret-123456', reverseUsername: null, reversePassword: null });
  });

  it('mutual CHAP: the target credentials too', () => {
    const c = contextOf(host({ disk: disk({ mutualUser: 'target-user', mutualSecret: 'target-secret1' }) }));
    expect(c).toMatchObject({
      username: 'worker-1-user',
      password: 'secret-123456',
      reverseUsername: 'target-user',
      reversePassword: 'target-secret1',
    });
  });

  it('no CHAP: no credentials at all', () => {
    const c = contextOf(host({ disk: disk({ chapUser: null, chapSecret: null }) }));
    expect(c).toMatchObject({ username: null, password: null, reverseUsername: null, reversePassword: null });
  });

  it("efiFilename, kernel arguments and params come from the profile", () => {
    const c = contextOf(host(), profile({ efiFilename: '/EFI/BOOT/BOOTX64.EFI', kernelArgs: 'quiet', params: { vlan: '20' } }));
    expect(c).toMatchObject({ efiFilename: '/EFI/BOOT/BOOTX64.EFI', kernelArgs: 'quiet', params: { vlan: '20' } });
    expect(contextOf(host(), profile({ efiFilename: null })).efiFilename).toBeNull();
  });

  it("labels are the profile's K3s labels merged with the host's, the host winning", () => {
    const p = profile({ k3sLabels: { role: 'worker', zone: 'a', 'hiveboot.io/pool': 'thin' } });
    const c = contextOf(host({ labels: { zone: 'b', gpu: 'none' } }), p);
    expect(c.labels).toEqual({ role: 'worker', zone: 'b', 'hiveboot.io/pool': 'thin', gpu: 'none' });
    // The merge does not write into the profile shared by other hosts.
    expect(p.k3sLabels).toEqual({ role: 'worker', zone: 'a', 'hiveboot.io/pool': 'thin' });
  });
});

describe('iscsiUri', () => {
  it('writes iscsi:<server>::<port>:<lun>:<target>, port 3260 by default', () => {
    expect(iscsiUri('192.0.2.10', 0, TARGET)).toBe(`iscsi:192.0.2.10::3260:0:${TARGET}`);
    expect(iscsiUri('192.0.2.10:3261', 0, TARGET)).toBe(`iscsi:192.0.2.10::3261:0:${TARGET}`);
    expect(iscsiUri('GW1.Example', 0, TARGET)).toBe(`iscsi:gw1.example::3260:0:${TARGET}`);
  });

  it('brackets IPv6 servers, with or without a port', () => {
    expect(iscsiUri('[2001:db8::1]:3260', 0, TARGET)).toBe(`iscsi:[2001:db8::1]::3260:0:${TARGET}`);
    expect(iscsiUri('[2001:DB8::1]', 0, TARGET)).toBe(`iscsi:[2001:db8::1]::3260:0:${TARGET}`);
    expect(iscsiUri('[::1]:3262', 0, TARGET)).toBe(`iscsi:[::1]::3262:0:${TARGET}`);
  });

  it('writes the LUN in hexadecimal, as RFC 4173 and iPXE read it (LUN 10 is "a", not LUN 16)', () => {
    expect(iscsiUri('192.0.2.10', 1, TARGET)).toBe(`iscsi:192.0.2.10::3260:1:${TARGET}`);
    expect(iscsiUri('192.0.2.10', 10, TARGET)).toBe(`iscsi:192.0.2.10::3260:a:${TARGET}`);
    expect(iscsiUri('192.0.2.10', 255, TARGET)).toBe(`iscsi:192.0.2.10::3260:ff:${TARGET}`);
    expect(iscsiUri('192.0.2.10', 16383, TARGET)).toBe(`iscsi:192.0.2.10::3260:3fff:${TARGET}`);
  });

  it('refuses a portal that is not one', () => {
    expect(() => iscsiUri('2001:db8::1', 0, TARGET)).toThrow(ValidationError);
    expect(() => iscsiUri('192.0.2.10:0', 0, TARGET)).toThrow(ValidationError);
    expect(() => iscsiUri('gw_1;shell', 0, TARGET)).toThrow(ValidationError);
  });
});
