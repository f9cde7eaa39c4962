import { describe, expect, it } from 'vitest';
import { hostView, type Inventory } from '../../src/inventory/index.js';
import { ConflictError, NotFoundError, ValidationError } from '../../src/model/errors.js';
import { disk, rawEvents, tempInventory, thrown } from './helpers.js';

const MAC = '52:54:00:aa:bb:01';
const MAC2 = '52:54:00:aa:bb:02';

function withProfiles(inv: Inventory, ...names: string[]): void {
  for (const name of names) inv.profiles.create({ name });
}

describe('hosts: identity', () => {
  it('stores the MAC in canonical form and finds the host by any common spelling', () => {
    const { inv } = tempInventory();
    const created = inv.hosts.create({ mac: '52-54-00-AA-BB-01', hostname: 'Worker-1' });
    expect(created.mac).toBe(MAC);
    expect(created.hostname).toBe('worker-1');
    for (const spelling of ['52-54-00-AA-BB-01', '525400aabb01', '5254.00aa.bb01', ' 52:54:00:AA:BB:01 ']) {
      expect(inv.hosts.get(spelling).id).toBe(created.id);
    }
    expect(inv.hosts.find(MAC)?.hostname).toBe('worker-1');
  });

  it('refuses a MAC that is already registered, however it is written', () => {
    const { inv } = tempInventory();
    inv.hosts.create({ mac: MAC, hostname: 'worker-1' });
    const err = thrown(() => inv.hosts.create({ mac: '52-54-00-AA-BB-01', hostname: 'worker-2' }), ConflictError, 'mac');
    expect(err.message).toContain(MAC);
    expect(inv.hosts.list()).toHaveLength(1);
    expect(inv.hosts.find(MAC)?.hostname).toBe('worker-1');
  });

  it('refuses a hostname another host uses, comparing case-insensitively', () => {
    const { inv } = tempInventory();
    inv.hosts.create({ mac: MAC, hostname: 'worker-1' });
    const err = thrown(() => inv.hosts.create({ mac: MAC2, hostname: 'WORKER-1' }), ConflictError, 'hostname');
    expect(err.message).toContain(MAC);
    expect(inv.hosts.find(MAC2)).toBeUndefined();

    inv.hosts.create({ mac: MAC2, hostname: 'worker-2' });
    thrown(() => inv.hosts.update(MAC2, { hostname: 'worker-1' }), ConflictError, 'hostname');
    expect(inv.hosts.get(MAC2).hostname).toBe('worker-2');
    // Keeping one's own name is not a clash.
    expect(inv.hosts.update(MAC2, { hostname: 'Worker-2' }).hostname).toBe('worker-2');
  });

  it('refuses an unknown profile naming the field, and stores nothing', () => {
    const { inv } = tempInventory();
    const err = thrown(() => inv.hosts.create({ mac: MAC, hostname: 'worker-1', profile: 'nope' }), ValidationError, 'profile');
    expect(err.message).toContain('"nope" does not exist');
    expect(inv.hosts.find(MAC)).toBeUndefined();
    expect(rawEvents(inv, MAC)).toEqual([]);

    inv.hosts.create({ mac: MAC, hostname: 'worker-1' });
    thrown(() => inv.hosts.update(MAC, { profile: 'nope' }), ValidationError, 'profile');
    expect(inv.hosts.get(MAC).profile).toBeNull();
  });

  it.each([
    [{ mac: 'not-a-mac' }, 'mac'],
    [{ mac: MAC, hostname: 'bad_name' }, 'hostname'],
    [{ mac: MAC, profile: 'Bad Profile' }, 'profile'],
    [{ mac: MAC, labels: { zone: 'two words' } }, 'labels.zone'],
    [{ mac: MAC, initiatorIqn: 'iqn.bad' }, 'initiatorIqn'],
  ])('validates create input %j', (input, field) => {
    const { inv } = tempInventory();
    thrown(() => inv.hosts.create(input), ValidationError, field);
    expect(inv.hosts.list()).toEqual([]);
  });

  it('reports an unregistered MAC as not found', () => {
    const { inv } = tempInventory();
    const err = thrown(() => inv.hosts.get('52-54-00-aa-bb-99'), NotFoundError, 'mac');
    expect(err.message).toBe('host 52:54:00:aa:bb:99 is not registered');
    thrown(() => inv.hosts.update(MAC, { hostname: 'x' }), NotFoundError, 'mac');
    thrown(() => inv.hosts.remove(MAC), NotFoundError, 'mac');
    thrown(() => inv.hosts.approve(MAC, { defaultProfile: 'default' }), NotFoundError, 'mac');
  });

  it('keeps labels and a lower-cased initiator IQN', () => {
    const { inv } = tempInventory();
    const h = inv.hosts.create({ mac: MAC, labels: { zone: 'rack-1' }, initiatorIqn: 'IQN.2026-01.io.hiveboot:Worker-1' });
    expect(h.labels).toEqual({ zone: 'rack-1' });
    expect(h.initiatorIqn).toBe('iqn.2026-01.io.hiveboot:worker-1');
    const u = inv.hosts.update(MAC, { labels: { zone: 'rack-2', role: 'gpu' }, initiatorIqn: null });
    expect(u.labels).toEqual({ zone: 'rack-2', role: 'gpu' });
    expect(u.initiatorIqn).toBeNull();
  });
});

describe('hosts: state machine', () => {
  it('is ready when created with a hostname, a profile and a disk', () => {
    const { inv } = tempInventory();
    withProfiles(inv, 'workers');
    const h = inv.hosts.create({ mac: MAC, hostname: 'worker-1', profile: 'workers', disk: disk() });
    expect(h.state).toBe('ready');
    expect(h.disk).toMatchObject({ source: 'manual', portals: ['192.0.2.10:3260'], lun: 0, chapUser: 'worker-1-user' });
  });

  it('is pending without a disk, and the event says what is missing', () => {
    const { inv } = tempInventory();
    withProfiles(inv, 'workers');
    expect(inv.hosts.create({ mac: MAC, hostname: 'worker-1', profile: 'workers' }).state).toBe('pending');
    expect(rawEvents(inv, MAC)[0]).toMatchObject({ message: 'registered as worker-1 with profile workers: pending', reason: 'waiting for a disk' });
    expect(inv.hosts.create({ mac: MAC2 }).state).toBe('pending');
    expect(rawEvents(inv, MAC2)[0]!.reason).toBe('waiting for a hostname, a profile, a disk');
  });

  it('moves pending → ready when a disk is added, and back to pending when it is removed', () => {
    const { inv } = tempInventory();
    withProfiles(inv, 'workers');
    inv.hosts.create({ mac: MAC, hostname: 'worker-1', profile: 'workers' });
    const ready = inv.hosts.update(MAC, { disk: disk() });
    expect(ready.state).toBe('ready');
    expect(rawEvents(inv, MAC).at(-1)!.message).toBe('updated disk; state pending → ready');

    const pending = inv.hosts.update(MAC, { disk: null });
    expect(pending.state).toBe('pending');
    expect(pending.disk).toBeNull();
    expect(inv.db.prepare('SELECT count(*) AS n FROM disks').get()).toEqual({ n: 0 });
    expect(rawEvents(inv, MAC).at(-1)!.message).toBe('updated disk; state ready → pending');
  });

  it('falls back to pending when the profile is taken away', () => {
    const { inv } = tempInventory();
    withProfiles(inv, 'workers');
    inv.hosts.create({ mac: MAC, hostname: 'worker-1', profile: 'workers', disk: disk() });
    expect(inv.hosts.update(MAC, { profile: null }).state).toBe('pending');
  });

  it('refuses an explicit ready state without a disk, naming the state field', () => {
    const { inv } = tempInventory();
    withProfiles(inv, 'workers');
    const err = thrown(() => inv.hosts.create({ mac: MAC, hostname: 'worker-1', profile: 'workers', state: 'ready' }), ConflictError, 'state');
    expect(err.message).toContain('a disk');
    expect(inv.hosts.find(MAC)).toBeUndefined();

    inv.hosts.create({ mac: MAC, hostname: 'worker-1', profile: 'workers' });
    thrown(() => inv.hosts.update(MAC, { state: 'ready' }), ConflictError, 'state');
    expect(inv.hosts.get(MAC).state).toBe('pending');
  });

  it('keeps a discovered host discovered on update until it is approved', () => {
    const { inv } = tempInventory();
    withProfiles(inv, 'workers');
    inv.hosts.create({ mac: MAC, state: 'discovered' });
    const h = inv.hosts.update(MAC, { hostname: 'worker-1', profile: 'workers', disk: disk() });
    expect(h.state).toBe('discovered');
    expect(h.disk).not.toBeNull();
  });

  it('keeps a disabled host disabled until a state is set explicitly', () => {
    const { inv } = tempInventory();
    withProfiles(inv, 'workers');
    inv.hosts.create({ mac: MAC, hostname: 'worker-1', profile: 'workers', disk: disk() });
    expect(inv.hosts.update(MAC, { state: 'disabled' }).state).toBe('disabled');
    expect(inv.hosts.update(MAC, { labels: { a: 'b' } }).state).toBe('disabled');
    const err = thrown(() => inv.hosts.approve(MAC, { defaultProfile: 'workers' }), ConflictError, 'state');
    expect(err.message).toContain('disabled');
    expect(inv.hosts.update(MAC, { state: 'ready' }).state).toBe('ready');
  });

  it('counts hosts by state and filters the list', () => {
    const { inv } = tempInventory();
    withProfiles(inv, 'workers', 'gpu');
    inv.hosts.create({ mac: MAC, hostname: 'b-worker', profile: 'workers', disk: disk() });
    inv.hosts.create({ mac: MAC2, hostname: 'a-worker', profile: 'gpu' });
    inv.hosts.create({ mac: '52:54:00:aa:bb:03', state: 'discovered' });
    expect(inv.hosts.countByState()).toEqual({ discovered: 1, pending: 1, ready: 1, disabled: 0 });
    expect(inv.hosts.list().map((h) => h.hostname)).toEqual(['a-worker', 'b-worker', null]);
    expect(inv.hosts.list({ state: 'ready' }).map((h) => h.mac)).toEqual([MAC]);
    expect(inv.hosts.list({ profile: 'gpu' }).map((h) => h.mac)).toEqual([MAC2]);
    expect(inv.hosts.list({ state: 'ready', profile: 'gpu' })).toEqual([]);
  });
});

describe('hosts: approve', () => {
  it('gives a discovered host node-<last 6 hex digits> and the default profile', () => {
    const { inv } = tempInventory();
    withProfiles(inv, 'default');
    inv.hosts.discover('52:54:00:AB:CD:EF', {}, { stage: 'discover' }, { maxDiscovered: 10 });
    const h = inv.hosts.approve('52-54-00-ab-cd-ef', { defaultProfile: 'default' });
    expect(h).toMatchObject({ hostname: 'node-abcdef', profile: 'default', state: 'pending' });
    expect(rawEvents(inv, '52:54:00:ab:cd:ef').at(-1)).toMatchObject({
      stage: 'api',
      message: 'approved as node-abcdef with profile default: discovered → pending',
      reason: 'waiting for a disk',
    });
  });

  it('is ready straight away when the host already has a disk', () => {
    const { inv } = tempInventory();
    withProfiles(inv, 'default');
    inv.hosts.create({ mac: MAC, state: 'discovered', disk: disk() });
    expect(inv.hosts.approve(MAC, { defaultProfile: 'default' }).state).toBe('ready');
  });

  it('uses a given hostname and profile over the defaults, and keeps ones the host already has', () => {
    const { inv } = tempInventory();
    withProfiles(inv, 'default', 'gpu');
    inv.hosts.create({ mac: MAC, state: 'discovered' });
    expect(inv.hosts.approve(MAC, { hostname: 'GPU-1', profile: 'gpu', defaultProfile: 'default' })).toMatchObject({
      hostname: 'gpu-1',
      profile: 'gpu',
    });
    inv.hosts.create({ mac: MAC2, hostname: 'kept', profile: 'gpu', state: 'discovered' });
    expect(inv.hosts.approve(MAC2, { defaultProfile: 'default' })).toMatchObject({ hostname: 'kept', profile: 'gpu' });
  });

  it('uses the whole MAC when node-<last 6> is taken', () => {
    const { inv } = tempInventory();
    withProfiles(inv, 'default');
    inv.hosts.create({ mac: '02:00:00:ab:cd:ef', hostname: 'node-abcdef' });
    inv.hosts.create({ mac: '52:54:00:ab:cd:ef', state: 'discovered' });
    expect(inv.hosts.approve('52:54:00:ab:cd:ef', { defaultProfile: 'default' }).hostname).toBe('node-525400abcdef');
  });

  it('refuses a missing default profile with a hint, changing nothing', () => {
    const { inv } = tempInventory();
    inv.hosts.create({ mac: MAC, state: 'discovered' });
    const err = thrown(() => inv.hosts.approve(MAC, { defaultProfile: 'default' }), ValidationError, 'profile');
    expect(err.message).toContain('it is the default profile');
    expect(inv.hosts.get(MAC)).toMatchObject({ state: 'discovered', hostname: null, profile: null });
    expect(rawEvents(inv, MAC).map((e) => e.message)).not.toContainEqual(expect.stringContaining('approved'));
  });

  it('refuses a hostname another host has', () => {
    const { inv } = tempInventory();
    withProfiles(inv, 'default');
    inv.hosts.create({ mac: MAC2, hostname: 'taken' });
    inv.hosts.create({ mac: MAC, state: 'discovered' });
    thrown(() => inv.hosts.approve(MAC, { hostname: 'taken', defaultProfile: 'default' }), ConflictError, 'hostname');
    expect(inv.hosts.get(MAC).state).toBe('discovered');
  });
});

describe('hosts: disks', () => {
  function create(inv: Inventory, d: Parameters<typeof disk>[0]): void {
    inv.hosts.create({ mac: MAC, hostname: 'worker-1', disk: disk(d) });
  }

  it('normalises portals, including IPv6 ones, and the target IQN', () => {
    const { inv } = tempInventory();
    inv.hosts.create({
      mac: MAC,
      disk: disk({ portals: ['192.0.2.10', '[2001:DB8::1]:3260', 'GW2.example.com:3261'], targetIqn: 'IQN.2003-01.org.x:W1', lun: 3 }),
    });
    expect(inv.hosts.get(MAC).disk).toMatchObject({
      portals: ['192.0.2.10:3260', '[2001:db8::1]:3260', 'gw2.example.com:3261'],
      targetIqn: 'iqn.2003-01.org.x:w1',
      lun: 3,
    });
  });

  it('accepts a disk without CHAP, and mutual CHAP with distinct secrets', () => {
    const { inv } = tempInventory();
    inv.hosts.create({ mac: MAC, disk: { portals: ['192.0.2.10'], targetIqn: 'iqn.2003-01.org.x:w1' } });
    expect(inv.hosts.get(MAC).disk).toMatchObject({ lun: 0, chapUser: null, chapSecret: null });
    inv.hosts.create({ mac: MAC2, disk: disk({ mutualUser: 'target-user', mutualSecret: 'Other-secret1' }) });
    expect(inv.hosts.get(MAC2).disk).toMatchObject({ mutualUser: 'target-user', mutualSecret: 'Other-secret1' });
  });

  it.each([
    [{ chapUser: 'short' }, 'disk.chapUser'],
    [{ chapUser: 'u'.repeat(65) }, 'disk.chapUser'],
    [{ chapSecret: 'too-short' }, 'disk.chapSecret'],
    [{ chapSecret: 'this-is-too-long-1' }, 'disk.chapSecret'],
    [{ chapSecret: undefined }, 'disk.chapSecret'],
    [{ chapUser: undefined }, 'disk.chapUser'],
    [{ chapUser: undefined, chapSecret: undefined, mutualUser: 'target-user', mutualSecret: 'Other-secret1' }, 'disk.mutualUser'],
    [{ mutualUser: 'target-user' }, 'disk.mutualSecret'],
    [{ mutualUser: 'target-user', mutualSecret: 'Secret-123456' }, 'disk.mutualSecret'],
    [{ mutualUser: 'bad user name', mutualSecret: 'Other-secret1' }, 'disk.mutualUser'],
    [{ portals: ['192.0.2.10', '192.0.2.10:3260'] }, 'disk.portals'],
    [{ portals: ['[2001:db8::1]:3260', '[2001:DB8::1]'] }, 'disk.portals'],
    [{ portals: ['192.0.2.10', '2001:db8::1'] }, 'disk.portals.1'],
    [{ portals: ['gw\n:3260'] }, 'disk.portals.0'],
    [{ targetIqn: 'iqn.2026-01.x y' }, 'disk.targetIqn'],
    [{ lun: 16384 }, 'disk.lun'],
    [{ lun: -1 }, 'disk.lun'],
    [{ lun: 1.5 }, 'disk.lun'],
  ])('refuses disk %j naming %s', (d, field) => {
    const { inv } = tempInventory();
    thrown(() => create(inv, d), ValidationError, field);
    expect(inv.hosts.find(MAC)).toBeUndefined();
  });

  it('does not put a secret in the error when it is refused', () => {
    const { inv } = tempInventory();
    const err = thrown(() => create(inv, { chapSecret: 'Secret;123456' }), ValidationError, 'disk.chapSecret');
    expect(err.message).not.toContain('Secret;123456');
  });

  it('replaces the disk on update and keeps its secrets out of the API view', () => {
    const { inv } = tempInventory();
    create(inv, {});
    inv.hosts.update(MAC, { disk: disk({ portals: ['192.0.2.11'], chapUser: 'second-user', chapSecret: 'Second-secret1' }) });
    const h = inv.hosts.get(MAC);
    expect(h.disk).toMatchObject({ portals: ['192.0.2.11:3260'], chapUser: 'second-user', chapSecret: 'Second-secret1' });
    expect(inv.db.prepare('SELECT count(*) AS n FROM disks').get()).toEqual({ n: 1 });
    const view = hostView(h);
    expect(view.disk).toMatchObject({ chapUser: 'second-user', hasChapSecret: true, hasMutualSecret: false });
    expect(JSON.stringify(view)).not.toContain('Second-secret1');
  });
});

describe('hosts: discover and touch', () => {
  it('records an unknown machine as discovered with its facts and address', () => {
    const { inv } = tempInventory();
    const result = inv.hosts.discover(
      '52-54-00-AA-BB-01',
      { buildarch: 'x86_64', platform: 'efi', manufacturer: 'ACME\u0007 Corp', product: 'T620' },
      { stage: 'discover', sourceIp: '192.0.2.50' },
      { maxDiscovered: 10 },
    );
    expect(result?.created).toBe(true);
    expect(result?.host).toMatchObject({
      mac: MAC,
      state: 'discovered',
      hostname: null,
      lastIp: '192.0.2.50',
      facts: { buildarch: 'x86_64', platform: 'efi', manufacturer: 'ACME Corp', product: 'T620' },
    });
    expect(rawEvents(inv, MAC)).toEqual([
      { stage: 'discover', message: 'discovered (ACME Corp, T620, x86_64, efi)', reason: 'unknown MAC and discovery is on: waiting for approval' },
    ]);
  });

  it('merges facts of a machine it already knows without changing its state or name', () => {
    const { inv } = tempInventory();
    withProfiles(inv, 'workers');
    inv.hosts.create({ mac: MAC, hostname: 'worker-1', profile: 'workers', disk: disk() });
    inv.hosts.discover(MAC, { buildarch: 'x86_64', serial: 'S1' }, { stage: 'discover', sourceIp: '192.0.2.51' }, { maxDiscovered: 0 });
    const again = inv.hosts.discover(MAC, { serial: 'S2', uuid: 'u-1' }, { stage: 'discover' }, { maxDiscovered: 0 });
    expect(again?.created).toBe(false);
    expect(again?.host).toMatchObject({
      state: 'ready',
      hostname: 'worker-1',
      lastIp: '192.0.2.51', // kept when the next report has no address
      facts: { buildarch: 'x86_64', serial: 'S2', uuid: 'u-1' },
    });
  });

  it('stops recording new machines at maxDiscovered, and says so on their timeline', () => {
    const { inv } = tempInventory();
    const actor = { stage: 'discover', sourceIp: '192.0.2.9' };
    expect(inv.hosts.discover('02:00:00:00:00:01', {}, actor, { maxDiscovered: 2 })?.created).toBe(true);
    expect(inv.hosts.discover('02:00:00:00:00:02', {}, actor, { maxDiscovered: 2 })?.created).toBe(true);
    expect(inv.hosts.discover('02:00:00:00:00:03', {}, actor, { maxDiscovered: 2 })).toBeUndefined();
    expect(inv.hosts.find('02:00:00:00:00:03')).toBeUndefined();
    expect(rawEvents(inv, '02:00:00:00:00:03')).toEqual([
      expect.objectContaining({ message: 'not recorded as discovered', reason: expect.stringContaining('boot.maxDiscovered') }),
    ]);
    // Known machines are still updated at the cap, and approving one frees a place.
    expect(inv.hosts.discover('02:00:00:00:00:01', { serial: 'x' }, actor, { maxDiscovered: 2 })?.host.facts).toEqual({ serial: 'x' });
    inv.profiles.create({ name: 'default' });
    inv.hosts.approve('02:00:00:00:00:01', { defaultProfile: 'default' });
    expect(inv.hosts.discover('02:00:00:00:00:03', {}, actor, { maxDiscovered: 2 })?.created).toBe(true);
  });

  it('keeps facts short and printable and never takes a mac fact', () => {
    const { inv } = tempInventory();
    const facts = { product: `${'p'.repeat(200)}`, serial: '\u0000\u0001', mac: 'ff:ff:ff:ff:ff:ff' } as Record<string, string>;
    const h = inv.hosts.discover(MAC, facts, { stage: 'discover' }, { maxDiscovered: 5 })!.host;
    expect(h.facts).toEqual({ product: 'p'.repeat(128) });
  });

  it('touch remembers the last address and time of a machine', () => {
    const { inv, clock } = tempInventory();
    inv.hosts.create({ mac: MAC });
    clock.advance(60_000);
    inv.hosts.touch(MAC, '192.0.2.77');
    expect(inv.hosts.get(MAC)).toMatchObject({ lastIp: '192.0.2.77', lastSeenAt: '2026-03-01T12:01:00.000Z' });
    clock.advance(60_000);
    inv.hosts.touch(MAC, null, { buildarch: 'arm64' });
    expect(inv.hosts.get(MAC)).toMatchObject({ lastIp: '192.0.2.77', lastSeenAt: '2026-03-01T12:02:00.000Z', facts: { buildarch: 'arm64' } });
  });
});

describe('hosts: every write has its event, in the same transaction', () => {
  it('records create, update, approve and remove, newest last, with actor and address', () => {
    const { inv } = tempInventory();
    withProfiles(inv, 'default');
    inv.hosts.create({ mac: MAC, state: 'discovered' }, { stage: 'cli' });
    inv.hosts.update(MAC, { labels: { zone: 'a' } }, { stage: 'api', sourceIp: '192.0.2.5' });
    inv.hosts.approve(MAC, { defaultProfile: 'default' });
    inv.hosts.remove(MAC);
    const events = inv.events.forMac(MAC).items.reverse();
    expect(events.map((e) => [e.stage, e.sourceIp, e.message])).toEqual([
      ['cli', null, 'registered: discovered'],
      ['api', '192.0.2.5', 'updated labels'],
      ['api', null, 'approved as node-aabb01 with profile default: discovered → pending'],
      ['api', null, 'removed (node-aabb01)'],
    ]);
  });

  it('keeps the timeline of a removed host and removes its disk', () => {
    const { inv } = tempInventory();
    inv.hosts.create({ mac: MAC, hostname: 'worker-1', disk: disk() });
    inv.hosts.remove('52-54-00-AA-BB-01');
    expect(inv.hosts.find(MAC)).toBeUndefined();
    expect(inv.db.prepare('SELECT count(*) AS n FROM disks').get()).toEqual({ n: 0 });
    expect(inv.events.forMac(MAC).items.map((e) => e.message)).toEqual(['removed (worker-1)', 'registered as worker-1: pending']);
    // The MAC can be registered again, and its history continues.
    inv.hosts.create({ mac: MAC, hostname: 'worker-1' });
    expect(inv.events.forMac(MAC).items).toHaveLength(3);
  });

  it('writes no event when a change is refused', () => {
    const { inv } = tempInventory();
    inv.hosts.create({ mac: MAC, hostname: 'worker-1' });
    inv.hosts.create({ mac: MAC2, hostname: 'worker-2' });
    const before = inv.events.all({ limit: 1000 }).items.length;
    thrown(() => inv.hosts.update(MAC2, { hostname: 'worker-1' }), ConflictError);
    thrown(() => inv.hosts.update(MAC2, { state: 'ready' }), ConflictError);
    thrown(() => inv.hosts.create({ mac: MAC }), ConflictError);
    expect(inv.events.all({ limit: 1000 }).items).toHaveLength(before);
  });

  it('rolls the change back when its event cannot be written', () => {
    const { inv } = tempInventory();
    inv.hosts.create({ mac: MAC, hostname: 'worker-1', disk: disk() });
    // From now on every event insert fails, as a full disk or a crash mid-transaction would.
    inv.db.exec(`CREATE TRIGGER no_events BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'event log unavailable'); END`);
    expect(() => inv.hosts.create({ mac: MAC2, hostname: 'worker-2' })).toThrow('event log unavailable');
    expect(() => inv.hosts.update(MAC, { hostname: 'renamed', disk: null })).toThrow('event log unavailable');
    expect(() => inv.hosts.remove(MAC)).toThrow('event log unavailable');
    expect(() => inv.hosts.discover('02:00:00:00:00:01', {}, { stage: 'discover' }, { maxDiscovered: 9 })).toThrow('event log unavailable');
    expect(inv.hosts.find(MAC2)).toBeUndefined();
    expect(inv.hosts.find('02:00:00:00:00:01')).toBeUndefined();
    const h = inv.hosts.get(MAC);
    expect(h.hostname).toBe('worker-1');
    expect(h.disk).not.toBeNull();
  });
});
