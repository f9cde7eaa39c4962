import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  buildTestApp,
  CHAP_SECRET,
  CHAP_USER,
  diskInput,
  MAC,
  MUTUAL_SECRET,
  MUTUAL_USER,
  TARGET_IQN,
  TEST_TOKEN,
  type HttpMethod,
  type Reply,
  type TestApp,
} from './helpers.js';
import { prng } from '../support/prng.js';

/** Every error the API gives has this shape; `field` names what to fix. */
function expectError(res: Reply, status: number, field?: string): void {
  expect(res.status, res.body).toBe(status);
  expect(String(res.headers['content-type'])).toMatch(/^application\/json/);
  const body = res.json as { error: unknown; message: unknown; field?: unknown };
  expect(typeof body.error).toBe('string');
  expect(typeof body.message).toBe('string');
  expect((body.message as string).length).toBeGreaterThan(0);
  if (field !== undefined) expect(body.field).toBe(field);
}

async function createProfile(t: TestApp, name = 'debian-k3s', extra: Record<string, unknown> = {}): Promise<void> {
  const res = await t.call('POST', '/v1/profiles', { name, ...extra });
  expect(res.status, res.body).toBe(201);
}

async function createHost(t: TestApp, body: Record<string, unknown>): Promise<Record<string, any>> {
  const res = await t.call('POST', '/v1/hosts', body);
  expect(res.status, res.body).toBe(201);
  return res.json as Record<string, any>;
}

describe('authentication', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(async () => t.close());

  it('answers 401 with a JSON error naming the authorization header when no token is sent', async () => {
    const res = await t.call('GET', '/v1/hosts', undefined, {});
    expectError(res, 401, 'authorization');
    expect(res.json.error).toBe('Unauthorized');
    expect(res.json.message).toMatch(/bearer token/i);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
  });

  it('answers 401 for a wrong token, a non-bearer scheme and an empty bearer', async () => {
    for (const authorization of ['Bearer wrong-token-0123456789', `Basic ${Buffer.from('admin:x').toString('base64')}`, 'Bearer ', TEST_TOKEN, `Bearer ${TEST_TOKEN}x`]) {
      const res = await t.call('GET', '/v1/hosts', undefined, { authorization });
      expectError(res, 401, 'authorization');
    }
    const wrong = await t.call('GET', '/v1/hosts', undefined, { authorization: 'Bearer wrong-token-0123456789' });
    expect(wrong.json.message).toMatch(/invalid bearer token/);
    expect(wrong.headers['www-authenticate']).toMatch(/invalid_token/);
  });

  it('accepts the right token, with any case of "Bearer"', async () => {
    for (const authorization of [`Bearer ${TEST_TOKEN}`, `bearer ${TEST_TOKEN}`, `BEARER ${TEST_TOKEN}  `]) {
      const res = await t.call('GET', '/v1/hosts', undefined, { authorization });
      expect(res.status, res.body).toBe(200);
      expect(res.json).toEqual({ items: [] });
    }
  });

  it('guards every /v1 route except discover, and a refused write changes nothing', async () => {
    const guarded: [HttpMethod, string, unknown?][] = [
      ['GET', '/v1/hosts'],
      ['POST', '/v1/hosts', { mac: MAC }],
      ['GET', `/v1/hosts/${MAC}`],
      ['PATCH', `/v1/hosts/${MAC}`, { hostname: 'w1' }],
      ['DELETE', `/v1/hosts/${MAC}`],
      ['POST', `/v1/hosts/${MAC}/approve`, {}],
      ['GET', `/v1/hosts/${MAC}/events`],
      ['GET', '/v1/profiles'],
      ['POST', '/v1/profiles', { name: 'p1' }],
      ['GET', '/v1/profiles/p1'],
      ['PATCH', '/v1/profiles/p1', { description: 'x' }],
      ['DELETE', '/v1/profiles/p1'],
      ['GET', '/v1/images'],
      ['POST', '/v1/images', { name: 'img', location: '/srv/img.raw' }],
      ['GET', '/v1/images/img'],
      ['DELETE', '/v1/images/img'],
      ['GET', '/v1/events'],
    ];
    for (const [method, url, body] of guarded) {
      const res = await t.call(method, url, body, body === undefined ? {} : { 'content-type': 'application/json' });
      expect(res.status, `${method} ${url}: ${res.body}`).toBe(401);
      expect(res.json.field).toBe('authorization');
    }
    // Nothing the unauthenticated requests asked for happened.
    expect((await t.call('GET', '/v1/hosts')).json.items).toEqual([]);
    expect((await t.call('GET', '/v1/profiles')).json.items).toEqual([]);
    expect((await t.call('GET', '/v1/images')).json.items).toEqual([]);
  });

  it('/healthz is 503 "starting" until the daemon says every listener is up, then 200', async () => {
    let ready = false;
    const starting = await buildTestApp({ ready: () => ready });
    try {
      const before = await starting.call('GET', '/healthz', undefined, {});
      expect(before.status).toBe(503);
      expect(before.json).toMatchObject({ status: 'starting', database: true });
      ready = true;
      const after = await starting.call('GET', '/healthz', undefined, {});
      expect(after.status).toBe(200);
      expect(after.json).toMatchObject({ status: 'ok', database: true });
    } finally {
      await starting.close();
    }
  });

  it('serves health, metrics, boot scripts and discovery without a token', async () => {
    const health = await t.call('GET', '/healthz', undefined, {});
    expect(health.status).toBe(200);
    expect(health.json).toMatchObject({ status: 'ok', database: true, version: '0.0.0-test' });

    const metrics = await t.call('GET', '/metrics', undefined, {});
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('hiveboot_http_requests_total');

    const bootstrap = await t.call('GET', '/boot.ipxe', undefined, {});
    expect(bootstrap.status).toBe(200);
    expect(bootstrap.body.startsWith('#!ipxe\n')).toBe(true);
    expect(bootstrap.body).toContain('/boot/${net0/mac}.ipxe');

    const script = await t.call('GET', '/boot/52:54:00:00:00:01.ipxe', undefined, {});
    expect(script.status).toBe(200);
    expect(script.body.startsWith('#!ipxe\n')).toBe(true);

    const discover = await t.call('POST', '/v1/discover', { mac: '52:54:00:00:00:02', buildarch: 'x86_64' }, {});
    expect(discover.status, discover.body).toBe(202);
    expect(discover.json).toEqual({ mac: '52:54:00:00:00:02', state: 'discovered' });
  });

  it('reports a wrong token on a sub-route before looking at the input (no information leaks)', async () => {
    const res = await t.call('GET', '/v1/hosts/zz', undefined, { authorization: 'Bearer nope' });
    expectError(res, 401, 'authorization');
  });
});

describe('input validation', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
    await t.call('POST', '/v1/images', { name: 'debian-12', location: '/srv/images/debian-12.raw' });
    await createProfile(t, 'debian-k3s', { image: 'debian-12' });
    await createHost(t, { mac: MAC, hostname: 'w1', profile: 'debian-k3s', disk: diskInput() });
  });
  afterAll(async () => t.close());

  const host = (extra: Record<string, unknown>) => ({ mac: '52:54:00:00:00:10', ...extra });
  const badHosts: [string, unknown, string][] = [
    ['missing mac', { hostname: 'w2' }, 'mac'],
    ['mac "zz"', { mac: 'zz' }, 'mac'],
    ['mac as a number', { mac: 525400000010 }, 'mac'],
    ['broadcast mac', { mac: 'ff:ff:ff:ff:ff:ff' }, 'mac'],
    ['hostname with a newline and a command', host({ hostname: 'w2\nchain http://evil/x' }), 'hostname'],
    ['hostname with a newline inside', host({ hostname: 'w\n2' }), 'hostname'],
    ['hostname with ${x}', host({ hostname: '${x}' }), 'hostname'],
    ['hostname with #', host({ hostname: 'w#2' }), 'hostname'],
    ['hostname with spaces', host({ hostname: 'w 2' }), 'hostname'],
    ['hostname as a number (not coerced)', host({ hostname: 12 }), 'hostname'],
    ['hostname as a boolean', host({ hostname: true }), 'hostname'],
    ['hostname as null', host({ hostname: null }), 'hostname'],
    ['unknown field', host({ colour: 'blue' }), 'colour'],
    ['unknown state', host({ state: 'booting' }), 'state'],
    ['profile that does not exist', host({ profile: 'nope' }), 'profile'],
    ['profile with an invalid name', host({ profile: 'Debian K3s' }), 'profile'],
    ['label key with a space and "!"', host({ labels: { 'bad key!': 'v' } }), 'labels.bad key!'],
    ['label key starting with "-"', host({ labels: { '-x': 'v' } }), 'labels.-x'],
    ['label value with a newline', host({ labels: { zone: 'a\nb' } }), 'labels.zone'],
    ['label value that is not a string', host({ labels: { zone: 1 } }), 'labels.zone'],
    ['invalid initiator IQN', host({ initiatorIqn: 'not-an-iqn' }), 'initiatorIqn'],
    ['disk portal with a space', host({ disk: diskInput({ portals: ['192.0.2.10 :3260'] }) }), 'disk.portals.0'],
    ['disk portal with a bad port', host({ disk: diskInput({ portals: ['192.0.2.10:99999'] }) }), 'disk.portals.0'],
    ['disk portal second in the list', host({ disk: diskInput({ portals: ['192.0.2.10', 'gw;reboot'] }) }), 'disk.portals.1'],
    ['disk with no portal', host({ disk: diskInput({ portals: [] }) }), 'disk.portals'],
    ['disk with a bad target IQN', host({ disk: diskInput({ targetIqn: 'iqn.bad' }) }), 'disk.targetIqn'],
    ['disk with a short CHAP secret', host({ disk: diskInput({ chapSecret: 'short' }) }), 'disk.chapSecret'],
    ['disk with a CHAP secret of 17 characters', host({ disk: diskInput({ chapSecret: 'A'.repeat(17) }) }), 'disk.chapSecret'],
    ['disk with a short CHAP user', host({ disk: diskInput({ chapUser: 'abc' }) }), 'disk.chapUser'],
    ['disk with chapUser but no secret', host({ disk: { portals: ['192.0.2.10'], targetIqn: TARGET_IQN, chapUser: CHAP_USER } }), 'disk.chapSecret'],
    ['disk with a secret but no chapUser', host({ disk: { portals: ['192.0.2.10'], targetIqn: TARGET_IQN, chapSecret: CHAP_SECRET } }), 'disk.chapUser'],
    ['mutual CHAP reusing the CHAP secret', host({ disk: diskInput({ mutualUser: MUTUAL_USER, mutualSecret: CHAP_SECRET }) }), 'disk.mutualSecret'],
    ['disk with a negative LUN', host({ disk: diskInput({ lun: -1 }) }), 'disk.lun'],
    ['disk with a LUN as text', host({ disk: diskInput({ lun: '1' }) }), 'disk.lun'],
    ['disk with an unknown field', host({ disk: diskInput({ password: 'x' }) }), 'disk.password'],
  ];

  it.each(badHosts)('POST /v1/hosts refuses %s with 400 naming the field', async (_name, body, field) => {
    const res = await t.call('POST', '/v1/hosts', body);
    expectError(res, 400, field);
    expect(res.json.error).toBe('Bad Request');
  });

  it('never registered any of the refused hosts', async () => {
    const { items } = (await t.call('GET', '/v1/hosts')).json as { items: { mac: string }[] };
    expect(items.map((h) => h.mac)).toEqual([MAC]);
  });

  it('does not echo a refused CHAP secret in the error', async () => {
    const secret = 'ThisIsTooLongToBeAChapSecret';
    const res = await t.call('POST', '/v1/hosts', host({ disk: diskInput({ chapSecret: secret }) }));
    expectError(res, 400, 'disk.chapSecret');
    expect(res.body).not.toContain(secret);
  });

  it('refuses a body that is not JSON, or not an object', async () => {
    expectError(await t.call('POST', '/v1/hosts', '{"mac": "52:54:00:00:00:10",', { ...t.auth, 'content-type': 'application/json' }), 400, 'body');
    for (const raw of ['null', '[]', '"52:54:00:00:00:10"', '42']) {
      expectError(await t.call('POST', '/v1/hosts', raw, { ...t.auth, 'content-type': 'application/json' }), 400, 'body');
    }
    // Prototype pollution attempts are refused by the JSON parser.
    expectError(await t.call('POST', '/v1/hosts', '{"mac":"52:54:00:00:00:10","__proto__":{"x":1}}', { ...t.auth, 'content-type': 'application/json' }), 400);
  });

  it('answers 415 to a body in another content type', async () => {
    const body = JSON.stringify({ mac: '52:54:00:00:00:10' });
    for (const type of ['text/plain', 'application/xml', 'multipart/form-data; boundary=x']) {
      const res = await t.call('POST', '/v1/hosts', body, { ...t.auth, 'content-type': type });
      expectError(res, 415, 'body');
      expect(res.json.error).toBe('Unsupported Media Type');
    }
  });

  it('answers 413 to a body over the limit', async () => {
    const res = await t.call('POST', '/v1/hosts', { mac: '52:54:00:00:00:10', labels: { big: 'x'.repeat(1024 * 1024 + 1) } });
    expectError(res, 413, 'body');
    expect(res.json.error).toBe('Payload Too Large');
  });

  it('refuses an empty PATCH and unknown or mistyped fields in a PATCH', async () => {
    const empty = await t.call('PATCH', `/v1/hosts/${MAC}`, {});
    expectError(empty, 400);
    expect(empty.json.message).toMatch(/at least one field/);
    expectError(await t.call('PATCH', `/v1/hosts/${MAC}`, { mac: '52:54:00:00:00:11' }), 400, 'mac');
    expectError(await t.call('PATCH', `/v1/hosts/${MAC}`, { hostname: 7 }), 400, 'hostname');
    expectError(await t.call('PATCH', `/v1/hosts/${MAC}`, { hostname: 'a;b' }), 400, 'hostname');
    expectError(await t.call('PATCH', `/v1/hosts/${MAC}`, { disk: diskInput({ chapSecret: 'tiny' }) }), 400, 'disk.chapSecret');
    expectError(await t.call('PATCH', '/v1/profiles/debian-k3s', {}), 400);
    // The host is as it was.
    const h = (await t.call('GET', `/v1/hosts/${MAC}`)).json;
    expect(h).toMatchObject({ hostname: 'w1', state: 'ready', disk: { chapUser: CHAP_USER, hasChapSecret: true } });
  });

  it('validates profiles: name, template, image, kernel arguments, EFI path, params', async () => {
    expectError(await t.call('POST', '/v1/profiles', { name: 'p1', template: 'nope' }), 400, 'template');
    expectError(await t.call('POST', '/v1/profiles', { name: 'p1', image: 'nope' }), 400, 'image');
    expectError(await t.call('POST', '/v1/profiles', { name: 'Bad Name' }), 400, 'name');
    expectError(await t.call('POST', '/v1/profiles', {}), 400, 'name');
    expectError(await t.call('POST', '/v1/profiles', { name: 'p1', kernelArgs: 'quiet\nshell' }), 400, 'kernelArgs');
    expectError(await t.call('POST', '/v1/profiles', { name: 'p1', kernelArgs: 'root=${evil}' }), 400, 'kernelArgs');
    expectError(await t.call('POST', '/v1/profiles', { name: 'p1', efiFilename: '/EFI/../x' }), 400, 'efiFilename');
    expectError(await t.call('POST', '/v1/profiles', { name: 'p1', params: { 'bad key': 'v' } }), 400, 'params.bad key');
    expectError(await t.call('POST', '/v1/profiles', { name: 'p1', k3sLabels: { 'a b': 'c' } }), 400, 'k3sLabels.a b');
    expectError(await t.call('PATCH', '/v1/profiles/debian-k3s', { template: 'nope' }), 400, 'template');
    expectError(await t.call('PATCH', '/v1/profiles/debian-k3s', { image: 'nope' }), 400, 'image');
    const names = ((await t.call('GET', '/v1/profiles')).json.items as { name: string }[]).map((p) => p.name);
    expect(names).toEqual(['debian-k3s']);
  });

  it('validates images', async () => {
    expectError(await t.call('POST', '/v1/images', { name: 'img' }), 400, 'location');
    expectError(await t.call('POST', '/v1/images', { name: 'img', location: '' }), 400, 'location');
    expectError(await t.call('POST', '/v1/images', { name: 'img', location: '/x', format: 'vmdk' }), 400, 'format');
    expectError(await t.call('POST', '/v1/images', { name: 'img', location: '/x', sha256: 'abc' }), 400, 'sha256');
    expectError(await t.call('POST', '/v1/images', { name: 'img', location: '/x', sizeBytes: -1 }), 400, 'sizeBytes');
    expectError(await t.call('POST', '/v1/images', { name: 'img', location: '/x', sizeBytes: '10' }), 400, 'sizeBytes');
  });

  it('validates discovery reports', async () => {
    expectError(await t.call('POST', '/v1/discover', { buildarch: 'x86_64' }, {}), 400, 'mac');
    expectError(await t.call('POST', '/v1/discover', { mac: 'zz' }, {}), 400, 'mac');
    expectError(await t.call('POST', '/v1/discover', { mac: '52:54:00:00:00:20', buildarch: 5 }, {}), 400, 'buildarch');
    expectError(await t.call('POST', '/v1/discover', { mac: '52:54:00:00:00:20', extra: 'x' }, {}), 400, 'extra');
    expectError(await t.call('POST', '/v1/discover', 'mac=zz', { 'content-type': 'application/x-www-form-urlencoded' }), 400, 'mac');
  });

  it('validates query strings', async () => {
    for (const q of ['limit=0', 'limit=abc', 'limit=', 'limit=-5', 'limit=1001', 'before=0', 'before=x']) {
      const field = `querystring.${q.split('=')[0]}`;
      expectError(await t.call('GET', `/v1/events?${q}`), 400, field);
      expectError(await t.call('GET', `/v1/hosts/${MAC}/events?${q}`), 400, field);
    }
    expectError(await t.call('GET', '/v1/hosts?state=booting'), 400, 'querystring.state');
  });

  it('refuses a malformed MAC in a path with 400 naming mac', async () => {
    expectError(await t.call('GET', '/v1/hosts/zz'), 400, 'mac');
    expectError(await t.call('PATCH', '/v1/hosts/zz', { hostname: 'x' }), 400, 'mac');
    expectError(await t.call('DELETE', '/v1/hosts/zz'), 400, 'mac');
    expectError(await t.call('GET', '/v1/hosts/zz/events'), 400, 'mac');
    expectError(await t.call('GET', '/boot/zz.ipxe', undefined, {}), 400, 'mac');
  });
});

describe('conflicts and missing things', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
    await t.call('POST', '/v1/images', { name: 'debian-12', location: '/srv/images/debian-12.raw' });
    await createProfile(t, 'debian-k3s', { image: 'debian-12' });
    await createHost(t, { mac: MAC, hostname: 'w1', profile: 'debian-k3s', disk: diskInput() });
    await createHost(t, { mac: '52:54:00:00:00:02', hostname: 'w2' });
  });
  afterAll(async () => t.close());

  it('refuses the same MAC written another way with 409 naming mac', async () => {
    for (const mac of ['52-54-00-AA-BB-CC', '525400AABBCC', '5254.00aa.bbcc', ' 52:54:00:AA:BB:CC ']) {
      const res = await t.call('POST', '/v1/hosts', { mac, hostname: 'other' });
      expectError(res, 409, 'mac');
      expect(res.json.message).toContain('52:54:00:aa:bb:cc');
    }
  });

  it('refuses a host name in use (case folded) with 409 naming hostname, on create and on change', async () => {
    expectError(await t.call('POST', '/v1/hosts', { mac: '52:54:00:00:00:03', hostname: 'W1' }), 409, 'hostname');
    const res = await t.call('PATCH', '/v1/hosts/52:54:00:00:00:02', { hostname: 'w1' });
    expectError(res, 409, 'hostname');
    expect(res.json.message).toContain(MAC);
    expect((await t.call('GET', '/v1/hosts/52:54:00:00:00:02')).json.hostname).toBe('w2');
  });

  it('refuses "ready" for a host without a disk (409 naming state)', async () => {
    expectError(await t.call('PATCH', '/v1/hosts/52:54:00:00:00:02', { state: 'ready' }), 409, 'state');
  });

  it('refuses to remove a profile or an image in use, and keeps them', async () => {
    const p = await t.call('DELETE', '/v1/profiles/debian-k3s');
    expectError(p, 409);
    expect(p.json.message).toMatch(/used by 1 host/);
    const i = await t.call('DELETE', '/v1/images/debian-12');
    expectError(i, 409);
    expect(i.json.message).toContain('debian-k3s');
    expect((await t.call('GET', '/v1/profiles/debian-k3s')).status).toBe(200);
    expect((await t.call('GET', '/v1/images/debian-12')).status).toBe(200);
  });

  it('refuses duplicate profile and image names with 409 naming name', async () => {
    expectError(await t.call('POST', '/v1/profiles', { name: 'debian-k3s' }), 409, 'name');
    expectError(await t.call('POST', '/v1/images', { name: 'debian-12', location: '/x' }), 409, 'name');
  });

  it('answers 404 as JSON for unknown hosts, profiles, images and routes', async () => {
    expectError(await t.call('GET', '/v1/hosts/52:54:00:00:00:99'), 404, 'mac');
    expectError(await t.call('PATCH', '/v1/hosts/52:54:00:00:00:99', { hostname: 'x' }), 404, 'mac');
    expectError(await t.call('DELETE', '/v1/hosts/52:54:00:00:00:99'), 404, 'mac');
    expectError(await t.call('POST', '/v1/hosts/52:54:00:00:00:99/approve', {}), 404, 'mac');
    expectError(await t.call('GET', '/v1/profiles/nope'), 404, 'name');
    expectError(await t.call('PATCH', '/v1/profiles/nope', { description: 'x' }), 404, 'name');
    expectError(await t.call('DELETE', '/v1/profiles/nope'), 404, 'name');
    expectError(await t.call('GET', '/v1/images/nope'), 404, 'name');
    expectError(await t.call('DELETE', '/v1/images/nope'), 404, 'name');
    const route = await t.call('GET', '/nope?x=1', undefined, {});
    expectError(route, 404);
    expect(route.json.message).toBe('no route GET /nope');
    expectError(await t.call('GET', '/v1/nope'), 404);
    expectError(await t.call('PUT', '/v1/hosts', { mac: MAC }), 404);
    expectError(await t.call('GET', `/boot/${MAC}.txt`, undefined, {}), 404, 'mac');
  });

  it('answers a malformed URL (bad percent-encoding) with the same JSON error shape', async () => {
    const res = await t.call('GET', '/v1/hosts/%ZZ', undefined, {});
    expectError(res, 400);
    expect(Object.keys(res.json as object).sort()).toEqual(['error', 'message']);
  });

  it('removes a host (204), after which it is 404 but its events stay', async () => {
    const del = await t.call('DELETE', '/v1/hosts/52:54:00:00:00:02');
    expect(del.status).toBe(204);
    expect(del.body).toBe('');
    expectError(await t.call('GET', '/v1/hosts/52:54:00:00:00:02'), 404, 'mac');
    const events = (await t.call('GET', '/v1/hosts/52:54:00:00:00:02/events')).json.items as { message: string }[];
    expect(events.map((e) => e.message)).toEqual(['removed (w2)', 'registered as w2: pending']);
  });

  it('approves a discovered host with a bare POST (no body): defaults for name and profile', async () => {
    const t2 = await buildTestApp({ defaultProfile: 'debian-k3s' });
    try {
      await createProfile(t2, 'debian-k3s');
      expect((await t2.call('GET', '/boot/52:54:00:00:00:42.ipxe', undefined, {})).status).toBe(200);
      const res = await t2.call('POST', '/v1/hosts/52:54:00:00:00:42/approve');
      expect(res.status, res.body).toBe(200);
      expect(res.json).toMatchObject({ mac: '52:54:00:00:00:42', hostname: 'node-000042', profile: 'debian-k3s', state: 'pending' });
    } finally {
      await t2.close();
    }
  });
});

describe('fuzzing the write endpoints', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
    await t.call('POST', '/v1/images', { name: 'debian-12', location: '/srv/images/debian-12.raw' });
    await createProfile(t, 'debian-k3s', { image: 'debian-12' });
    await createHost(t, { mac: MAC, hostname: 'w1', profile: 'debian-k3s', disk: diskInput() });
  });
  afterAll(async () => t.close());

  const KEYS = [
    'mac', 'hostname', 'profile', 'state', 'labels', 'initiatorIqn', 'disk', 'portals', 'targetIqn', 'lun', 'chapUser',
    'chapSecret', 'mutualUser', 'mutualSecret', 'name', 'description', 'template', 'image', 'kernelArgs', 'k3sLabels',
    'efiFilename', 'params', 'location', 'format', 'sizeBytes', 'sha256', 'buildarch', 'platform', 'uuid', 'arch',
    '__proto__', 'constructor', 'prototype', '', 'k'.repeat(300),
  ];
  const STRINGS = [
    '', ' ', MAC, '52-54-00-AA-BB-CD', '52:54:00:00:00:77', 'zz', 'w1', 'W-9', 'node.example', '${x}', '#', 'a\nb', '\u0000',
    '\r\n', '\t', '..', '../../etc/passwd', 'iqn.2003-01.org.x:y', TARGET_IQN, '192.0.2.1:3260', '[2001:db8::1]:3260', 'gw:0',
    'ready', 'pending', 'discovered', 'disabled', 'raw', 'qcow2', 'sanboot', 'debian-k3s', 'debian-12', '🐝', 'x'.repeat(70),
    'y'.repeat(3000), '\\', '"', "'", '`', ';|&', 'null', '0', '-1', '1e400', CHAP_USER, CHAP_SECRET, '/EFI/BOOT/BOOTX64.EFI',
  ];
  const NUMBERS = [0, -1, 1, 1.5, -0.5, 16383, 16384, 65536, 2 ** 31, 2 ** 53, 1e308, -1e308];

  function fuzzer(seed: number) {
    const r = prng(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const str = (): string => {
      if (r() < 0.6) return pick(STRINGS);
      const n = Math.floor(r() * 40);
      let s = '';
      for (let i = 0; i < n; i++) {
        const c = r();
        s += c < 0.15 ? String.fromCharCode(Math.floor(r() * 32)) : c < 0.9 ? String.fromCharCode(32 + Math.floor(r() * 95)) : String.fromCodePoint(0x80 + Math.floor(r() * 0x2ff80));
      }
      return s;
    };
    const value = (depth: number): unknown => {
      const k = r();
      if (depth > 3 || k < 0.35) return str();
      if (k < 0.47) return pick(NUMBERS);
      if (k < 0.52) return r() < 0.5;
      if (k < 0.57) return null;
      if (k < 0.7) return Array.from({ length: Math.floor(r() * 4) }, () => value(depth + 1));
      return object(depth + 1);
    };
    const object = (depth: number): Record<string, unknown> => {
      const o: Record<string, unknown> = {};
      const n = Math.floor(r() * 6);
      for (let i = 0; i < n; i++) {
        // defineProperty so that "__proto__" becomes a real key in the JSON, as an attacker would send it.
        Object.defineProperty(o, r() < 0.8 ? pick(KEYS) : str(), { value: value(depth), enumerable: true, writable: true, configurable: true });
      }
      return o;
    };
    /** A valid body with one part broken: reaches the semantic checks behind the schema. */
    const mutate = (base: Record<string, unknown>): Record<string, unknown> => {
      const o = structuredClone(base);
      const key = pick(Object.keys(o).concat(pick(KEYS)));
      const roll = r();
      if (roll < 0.2) delete o[key];
      else if (key === 'disk' || roll < 0.35) {
        const disk = structuredClone(diskInput({ mutualUser: MUTUAL_USER, mutualSecret: MUTUAL_SECRET })) as Record<string, unknown>;
        const dk = pick(Object.keys(disk).concat(['lun', 'extra']));
        disk[dk] = r() < 0.3 ? [value(2), str()] : value(2);
        o.disk = disk;
      } else o[key] = value(1);
      return o;
    };
    return { r, pick, str, value, object, mutate };
  }

  const BASES: Record<string, Record<string, unknown>> = {
    host: { mac: '52:54:00:00:10:01', hostname: 'fuzz-1', profile: 'debian-k3s', labels: { zone: 'a' }, disk: diskInput() },
    profile: { name: 'fuzz', template: 'sanboot', image: 'debian-12', kernelArgs: 'quiet', k3sLabels: { role: 'worker' }, params: { a: 'b' } },
    image: { name: 'fuzz-img', location: '/srv/x.raw', format: 'raw', sizeBytes: 10, sha256: 'a'.repeat(64) },
    discover: { mac: '52:54:00:00:20:01', buildarch: 'x86_64', platform: 'efi' },
    patch: { hostname: 'w1', labels: { zone: 'b' }, state: 'ready' },
  };

  it('never answers 5xx and always answers JSON, with a message on every error', async () => {
    const f = fuzzer(0x5eed);
    const targets: { method: HttpMethod; url: string; base: keyof typeof BASES; form?: boolean }[] = [
      { method: 'POST', url: '/v1/hosts', base: 'host' },
      { method: 'POST', url: '/v1/profiles', base: 'profile' },
      { method: 'POST', url: '/v1/images', base: 'image' },
      { method: 'POST', url: '/v1/discover', base: 'discover' },
      { method: 'POST', url: '/v1/discover', base: 'discover', form: true },
      { method: 'PATCH', url: `/v1/hosts/${MAC}`, base: 'patch' },
      { method: 'PATCH', url: '/v1/profiles/debian-k3s', base: 'profile' },
      { method: 'POST', url: '/v1/hosts/52:54:00:00:20:01/approve', base: 'patch' },
    ];
    const seen = new Map<number, number>();
    for (let i = 0; i < 480; i++) {
      const target = f.pick(targets);
      const roll = f.r();
      const body: unknown = roll < 0.45 ? f.mutate(BASES[target.base]!) : roll < 0.85 ? f.object(0) : f.value(0);
      let payload: string;
      let type = 'application/json';
      if (target.form) {
        type = 'application/x-www-form-urlencoded';
        const params = new URLSearchParams();
        if (body && typeof body === 'object' && !Array.isArray(body)) for (const [k, v] of Object.entries(body)) params.append(k, String(v));
        else params.append(f.str(), f.str());
        payload = params.toString();
      } else {
        payload = JSON.stringify(body) ?? 'null';
        // Now and then, JSON cut short.
        if (f.r() < 0.08) payload = payload.slice(0, Math.floor(f.r() * payload.length));
      }
      const headers = target.url === '/v1/discover' ? { 'content-type': type } : { ...t.auth, 'content-type': type };
      const res = await t.call(target.method, target.url, payload, headers);
      const what = `#${i} ${target.method} ${target.url} ${payload.slice(0, 300)} → ${res.status} ${res.body.slice(0, 300)}`;
      seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
      expect(res.status, what).toBeLessThan(500);
      expect(() => res.json, what).not.toThrow();
      if (res.status >= 400) {
        expect(typeof res.json.message, what).toBe('string');
        expect(typeof res.json.error, what).toBe('string');
        expect(['string', 'undefined'], what).toContain(typeof res.json.field);
      }
    }
    // The fuzz reached both the refusals and the successful paths.
    const codes = [...seen.keys()];
    expect(codes.some((c) => c === 400)).toBe(true);
    expect(codes.some((c) => c >= 200 && c < 300)).toBe(true);
    // Nothing broke underneath: no request failed inside, and the service still answers.
    const errors = t.log.lines().filter((l) => (l.level as number) >= 50);
    expect(errors).toEqual([]);
    expect((await t.call('GET', '/healthz', undefined, {})).json).toMatchObject({ status: 'ok', database: true });
    expect((await t.call('GET', `/v1/hosts/${MAC}`)).status).toBe(200);
  });
});

describe('event timeline paging', () => {
  let t: TestApp;
  const N = 130;
  beforeAll(async () => {
    t = await buildTestApp();
    await createHost(t, { mac: MAC, hostname: 'w1' });
    for (let i = 1; i <= N; i++) {
      const res = await t.call('PATCH', `/v1/hosts/${MAC}`, { labels: { n: String(i) } });
      expect(res.status).toBe(200);
    }
    // Events of another machine must not appear on this one's timeline.
    await t.call('GET', '/boot/52:54:00:00:00:02.ipxe', undefined, {});
  });
  afterAll(async () => t.close());

  it('pages through all events exactly once, newest first, ending with nextBefore null', async () => {
    const all: { id: number; mac: string; message: string; stage: string }[] = [];
    const pageSizes: number[] = [];
    let before: number | null | undefined;
    for (let guard = 0; guard < 10; guard++) {
      const q = before ? `limit=50&before=${before}` : 'limit=50';
      const res = await t.call('GET', `/v1/hosts/${MAC}/events?${q}`);
      expect(res.status).toBe(200);
      const page = res.json as { items: typeof all; nextBefore: number | null };
      all.push(...page.items);
      pageSizes.push(page.items.length);
      before = page.nextBefore;
      if (before === null) break;
      expect(before).toBe(page.items[page.items.length - 1]!.id);
    }
    expect(before).toBeNull();
    expect(pageSizes).toEqual([50, 50, N + 1 - 100]);
    expect(all).toHaveLength(N + 1);
    expect(new Set(all.map((e) => e.id)).size).toBe(N + 1);
    const ids = all.map((e) => e.id);
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    expect(all.every((e) => e.mac === MAC)).toBe(true);
    expect(all[0]!.message).toBe('updated labels');
    expect(all[all.length - 1]!.message).toBe('registered as w1: pending');
  });

  it('accepts any MAC spelling for the timeline', async () => {
    const res = await t.call('GET', '/v1/hosts/52-54-00-AA-BB-CC/events?limit=1');
    expect(res.json.items).toHaveLength(1);
    expect(res.json.items[0].mac).toBe(MAC);
    expect(typeof res.json.nextBefore).toBe('number');
  });

  it('filters all events by stage', async () => {
    const api = (await t.call('GET', '/v1/events?stage=api&limit=1000')).json as { items: { stage: string; mac: string }[]; nextBefore: null };
    expect(api.items).toHaveLength(N + 1);
    expect(api.items.every((e) => e.stage === 'api')).toBe(true);
    expect(api.nextBefore).toBeNull();
    const script = (await t.call('GET', '/v1/events?stage=script')).json as { items: { stage: string; mac: string; message: string }[] };
    expect(script.items.map((e) => [e.stage, e.mac, e.message])).toEqual([['script', '52:54:00:00:00:02', 'script: discover']]);
    const everything = (await t.call('GET', '/v1/events?limit=1000')).json as { items: unknown[] };
    expect(everything.items.length).toBeGreaterThan(N + 2);
    expect((await t.call('GET', '/v1/events?stage=nothing-like-this')).json).toEqual({ items: [], nextBefore: null });
  });
});

describe('secrets in the API and in scripts', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
    await createProfile(t, 'debian-k3s');
  });
  afterAll(async () => t.close());

  it('never reads back CHAP secrets, and says that they are set', async () => {
    const created = await t.call('POST', '/v1/hosts', {
      mac: MAC,
      hostname: 'w1',
      profile: 'debian-k3s',
      disk: diskInput({ mutualUser: MUTUAL_USER, mutualSecret: MUTUAL_SECRET }),
    });
    expect(created.status).toBe(201);
    for (const res of [created, await t.call('GET', `/v1/hosts/${MAC}`), await t.call('GET', '/v1/hosts'), await t.call('GET', `/v1/hosts/${MAC}/events`), await t.call('GET', '/v1/events')]) {
      expect(res.status).toBe(200 + (res === created ? 1 : 0));
      expect(res.body).not.toContain(CHAP_SECRET);
      expect(res.body).not.toContain(MUTUAL_SECRET);
    }
    const h = (await t.call('GET', `/v1/hosts/${MAC}`)).json;
    expect(h.state).toBe('ready');
    expect(h.disk).toEqual({
      source: 'manual',
      portals: ['192.0.2.10:3260'],
      targetIqn: TARGET_IQN,
      lun: 0,
      chapUser: CHAP_USER,
      hasChapSecret: true,
      mutualUser: MUTUAL_USER,
      hasMutualSecret: true,
      updatedAt: expect.any(String),
    });
    expect(Object.keys(h.disk)).not.toContain('chapSecret');
  });

  it("puts the secrets in the host's own boot script", async () => {
    const res = await t.call('GET', `/boot/${MAC}.ipxe`, undefined, {});
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(res.headers['cache-control']).toBe('no-store');
    const lines = res.body.split('\n');
    expect(lines[0]).toBe('#!ipxe');
    expect(lines).toContain(`set username ${CHAP_USER}`);
    expect(lines).toContain(`set password ${CHAP_SECRET}`);
    expect(lines).toContain(`set reverse-username ${MUTUAL_USER}`);
    expect(lines).toContain(`set reverse-password ${MUTUAL_SECRET}`);
    expect(lines).toContain('set initiator-iqn iqn.2026-01.io.hiveboot:w1');
    expect(lines).toContain(`sanboot iscsi:192.0.2.10::3260:0:${TARGET_IQN} || goto failed`);
    // ... and not in another machine's script.
    const other = await t.call('GET', '/boot/52:54:00:00:00:03.ipxe', undefined, {});
    expect(other.body).not.toContain(CHAP_SECRET);
    expect(other.body).toContain('params --name discover');
  });

  it('removes the secrets with the disk', async () => {
    const res = await t.call('PATCH', `/v1/hosts/${MAC}`, { disk: null });
    expect(res.json).toMatchObject({ state: 'pending', disk: null });
    const script = await t.call('GET', `/boot/${MAC}.ipxe`, undefined, {});
    expect(script.body).not.toContain(CHAP_SECRET);
    expect(script.body).toMatch(/is pending: pending, waiting for a disk/);
  });
});

describe('boot scripts', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(async () => t.close());

  it('records the known facts a machine sends with its script request, and only those', async () => {
    const res = await t.call('GET', '/boot/5254.0000.0031.ipxe?buildarch=arm64&platform=efi&manufacturer=Raspberry&firmware=custom&constructor=x', undefined, {});
    expect(res.status).toBe(200);
    expect(res.body).toContain('params --name discover');
    const h = (await t.call('GET', '/v1/hosts/52:54:00:00:00:31')).json;
    expect(h).toMatchObject({ mac: '52:54:00:00:00:31', state: 'discovered', lastIp: '127.0.0.1' });
    expect(h.facts).toEqual({ buildarch: 'arm64', platform: 'efi', manufacturer: 'Raspberry' });
  });

  it('tells a discovered machine to wait, and a disabled one to boot the next device', async () => {
    const wait = await t.call('GET', '/boot/52:54:00:00:00:31.ipxe', undefined, {});
    expect(wait.body).toContain('echo hiveboot: 52:54:00:00:00:31 is discovered: discovered, waiting for approval');
    expect((await t.call('PATCH', '/v1/hosts/52:54:00:00:00:31', { state: 'disabled' })).status).toBe(200);
    const exit = await t.call('GET', '/boot/52:54:00:00:00:31.ipxe', undefined, {});
    expect(exit.body.split('\n')).toContain('exit');
    expect(exit.body).not.toContain('sanboot');
  });
});

describe('OpenAPI document and UI', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(async () => t.close());

  it('serves an OpenAPI 3 document of the API with bearer security', async () => {
    const res = await t.call('GET', '/docs/json', undefined, {});
    expect(res.status).toBe(200);
    const doc = res.json as {
      openapi: string;
      info: { title: string; version: string };
      paths: Record<string, Record<string, { security?: unknown[]; responses?: Record<string, unknown>; requestBody?: unknown }>>;
      components: { securitySchemes: Record<string, unknown> };
      security: unknown[];
    };
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.info).toEqual({ title: 'hiveboot', version: '0.0.0-test', description: expect.any(String) });
    for (const path of ['/v1/hosts', '/v1/hosts/{mac}', '/v1/hosts/{mac}/events', '/v1/hosts/{mac}/approve', '/v1/profiles', '/v1/profiles/{name}', '/v1/images', '/v1/images/{name}', '/v1/events', '/v1/discover']) {
      expect(Object.keys(doc.paths), path).toContain(path);
    }
    expect(Object.keys(doc.paths['/v1/hosts']!).sort()).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths['/v1/hosts/{mac}']!).sort()).toEqual(['delete', 'get', 'patch']);
    expect(doc.paths['/v1/hosts']!.post!.requestBody).toBeDefined();
    expect(Object.keys(doc.paths['/v1/hosts']!.post!.responses!)).toEqual(expect.arrayContaining(['201', '400', '401', '409']));
    expect(doc.components.securitySchemes.bearer).toEqual({ type: 'http', scheme: 'bearer' });
    expect(doc.security).toEqual([{ bearer: [] }]);
    // Firmware has no token: its routes say so.
    expect(doc.paths['/v1/discover']!.post!.security).toEqual([]);
    expect(doc.paths['/boot/{file}']!.get!.security).toEqual([]);
    // Health and metrics are not part of the API document.
    expect(Object.keys(doc.paths)).not.toContain('/healthz');
    // The write-only secrets are documented as inputs only.
    expect(res.body).toContain('write-only');
  });

  it('serves the documentation UI', async () => {
    let res = await t.call('GET', '/docs', undefined, {});
    if (res.status === 302) res = await t.call('GET', String(res.headers.location), undefined, {});
    expect(res.status).toBe(200);
    expect(String(res.headers['content-type'])).toMatch(/^text\/html/);
    expect(res.body).toMatch(/swagger-ui/i);
  });
});

describe('metrics', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await buildTestApp();
  });
  afterEach(async () => t.close());

  it('counts boot scripts by decision and hosts by state', async () => {
    await createProfile(t, 'debian-k3s');
    await createHost(t, { mac: MAC, hostname: 'w1', profile: 'debian-k3s', disk: diskInput() });
    await createHost(t, { mac: '52:54:00:00:00:02', hostname: 'w2' });
    await createHost(t, { mac: '52:54:00:00:00:03', hostname: 'w3', state: 'disabled' });
    const get = (mac: string) => t.call('GET', `/boot/${mac}.ipxe`, undefined, {});
    for (let i = 0; i < 3; i++) expect((await get(MAC)).status).toBe(200); // boot
    expect((await get('52:54:00:00:00:02')).status).toBe(200); // wait (pending)
    expect((await get('52:54:00:00:00:03')).status).toBe(200); // exit (disabled)
    expect((await get('52:54:00:00:00:04')).status).toBe(200); // discover (unknown)
    expect((await get('52:54:00:00:00:05')).status).toBe(200); // discover (unknown)

    const res = await t.call('GET', '/metrics', undefined, {});
    expect(res.status).toBe(200);
    expect(String(res.headers['content-type'])).toMatch(/^text\/plain/);
    const m = res.body;
    expect(m).toContain('hiveboot_boot_scripts_total{decision="boot"} 3');
    expect(m).toContain('hiveboot_boot_scripts_total{decision="wait"} 1');
    expect(m).toContain('hiveboot_boot_scripts_total{decision="exit"} 1');
    expect(m).toContain('hiveboot_boot_scripts_total{decision="discover"} 2');
    expect(m).toContain('hiveboot_hosts{state="ready"} 1');
    expect(m).toContain('hiveboot_hosts{state="pending"} 1');
    expect(m).toContain('hiveboot_hosts{state="disabled"} 1');
    expect(m).toContain('hiveboot_hosts{state="discovered"} 2');
    expect(m).toContain('hiveboot_http_requests_total{method="GET",route="/boot/:file",status="200"} 7');
    expect(m).toContain('hiveboot_http_requests_total{method="POST",route="/v1/hosts",status="201"} 3');
    expect(m).toMatch(/hiveboot_http_request_duration_seconds_count\{route="\/boot\/:file"\} 7/);
  });

  it('counts refused requests by status', async () => {
    await t.call('GET', '/v1/hosts', undefined, {});
    await t.call('GET', '/v1/hosts', undefined, {});
    await t.call('POST', '/v1/hosts', { mac: 'zz' });
    const m = (await t.call('GET', '/metrics', undefined, {})).body;
    expect(m).toContain('hiveboot_http_requests_total{method="GET",route="/v1/hosts",status="401"} 2');
    expect(m).toContain('hiveboot_http_requests_total{method="POST",route="/v1/hosts",status="400"} 1');
    expect(m).not.toContain('decision="boot"} 1');
  });
});

describe('no secret in the logs', () => {
  it('logs requests at trace level without the API token, a wrong token or any CHAP secret', async () => {
    const t = await buildTestApp({ logLevel: 'trace' });
    const wrongToken = 'wrong-token-Zq9xW2vL7pK4mN8r';
    const rejectedSecret = 'RejectedSecret-XY';
    try {
      await createProfile(t, 'debian-k3s');
      await createHost(t, { mac: MAC, hostname: 'w1', profile: 'debian-k3s', disk: diskInput({ mutualUser: MUTUAL_USER, mutualSecret: MUTUAL_SECRET }) });
      // A refused secret (too long) is not logged either.
      expect((await t.call('POST', '/v1/hosts', { mac: '52:54:00:00:00:02', disk: diskInput({ chapSecret: rejectedSecret }) })).status).toBe(400);
      expect((await t.call('PATCH', `/v1/hosts/${MAC}`, { disk: diskInput({ chapSecret: `${CHAP_SECRET}x`, mutualUser: MUTUAL_USER, mutualSecret: MUTUAL_SECRET }) })).status).toBe(200);
      const script = await t.call('GET', `/boot/${MAC}.ipxe`, undefined, {});
      expect(script.body).toContain(`set password ${CHAP_SECRET}x`);
      for (let i = 0; i < 3; i++) {
        expect((await t.call('GET', '/v1/hosts', undefined, { authorization: `Bearer ${wrongToken}` })).status).toBe(401);
      }
      expect((await t.call('GET', '/v1/hosts', undefined, { authorization: wrongToken })).status).toBe(401);
      expect((await t.call('GET', `/v1/hosts/${MAC}`)).status).toBe(200);
      expect((await t.call('GET', `/v1/hosts/${MAC}/events`)).status).toBe(200);
      expect((await t.call('POST', '/v1/hosts', 'not json', { ...t.auth, 'content-type': 'application/json' })).status).toBe(400);
    } finally {
      await t.close();
    }
    const text = t.log.text();
    // The log is there: every request was logged, including the script fetch.
    const lines = t.log.lines();
    expect(lines.filter((l) => l.msg === 'incoming request').length).toBeGreaterThanOrEqual(10);
    expect(text).toContain(`/boot/${MAC}.ipxe`);
    for (const secret of [TEST_TOKEN, wrongToken, CHAP_SECRET, MUTUAL_SECRET, rejectedSecret]) {
      expect(text, `log contains ${secret}`).not.toContain(secret);
    }
  });
});
