import { readFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Inventory } from '../../src/inventory/index.js';
import { CHAP_SECRET, CHAP_USER, diskInput, MAC, startTestDaemon, TARGET_IQN, type TestDaemon } from './helpers.js';

/**
 * The daemon over real HTTP on 127.0.0.1: what iPXE, curl and the CLI see, including the token file,
 * Content-Length on scripts, and a graceful stop.
 */

const TOKEN = 'server-test-token-0123456789';

function api(d: TestDaemon, token: string | null = TOKEN) {
  return async (method: string, path: string, body?: unknown) => {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${d.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, json: text ? (JSON.parse(text) as any) : undefined };
  };
}

/** Resolves true when a TCP connection to the port is refused, false when it is accepted. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * An HTTP request whose body is sent in two parts: the server has the request (its onRequest hooks
 * ran) but cannot answer until finish() sends the rest. The response is read until the server closes.
 */
function slowRequest(port: number, path: string, token: string, body: string) {
  const socket = connect(port, '127.0.0.1');
  let raw = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (raw += chunk));
  const response = new Promise<RawResponse>((resolve, reject) => {
    socket.once('error', reject);
    socket.once('close', () => {
      const [head = '', ...rest] = raw.split('\r\n\r\n');
      const [statusLine = '', ...headerLines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of headerLines) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: rest.join('\r\n\r\n') });
    });
  });
  const half = Math.floor(body.length / 2);
  socket.write(
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${token}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, half)}`,
  );
  return { response, finish: () => socket.write(body.slice(half)) };
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('the daemon over HTTP', () => {
  let d: TestDaemon;
  let call: ReturnType<typeof api>;
  beforeAll(async () => {
    d = await startTestDaemon({ api: { token: TOKEN } });
    call = api(d);
  });
  afterAll(async () => d?.cleanup());

  it('listens on 127.0.0.1 and answers /healthz', async () => {
    expect(d.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${d.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok', database: true, version: expect.any(String) });
    expect(d.log.lines().some((l) => l.msg === 'hiveboot is up' && l.url === d.url)).toBe(true);
  });

  it('serves a registered host its sanboot script, with a length and no caching', async () => {
    expect((await call('POST', '/v1/profiles', { name: 'debian-k3s' })).status).toBe(201);
    const created = await call('POST', '/v1/hosts', { mac: MAC, hostname: 'w1', profile: 'debian-k3s', disk: diskInput() });
    expect(created.status, created.text).toBe(201);
    expect(created.json.state).toBe('ready');

    const res = await fetch(`${d.url}/boot/${MAC}.ipxe`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-store');
    const script = await res.text();
    // iPXE is far slower without a length: it must be there and exact.
    expect(Number(res.headers.get('content-length'))).toBe(Buffer.byteLength(script));
    expect(script.startsWith('#!ipxe\n')).toBe(true);
    expect(script).toContain(`sanboot iscsi:192.0.2.10::3260:0:${TARGET_IQN}`);
    expect(script).toContain(`set username ${CHAP_USER}\nset password ${CHAP_SECRET}\n`);
    // Links in the script point back at the address the machine used.
    expect(script).toContain(`chain --autofree --replace ${d.url}/boot/${MAC}.ipxe`);

    const host = (await call('GET', `/v1/hosts/${MAC}`)).json;
    expect(host.lastIp).toBe('127.0.0.1');
    expect(host.lastSeenAt).toEqual(expect.any(String));
    const events = (await call('GET', `/v1/hosts/${MAC}/events`)).json.items as { message: string; sourceIp: string; reason: string }[];
    expect(events[0]).toMatchObject({ message: 'script: boot', sourceIp: '127.0.0.1' });
    expect(events[0]!.reason).toContain('profile debian-k3s');
  });

  it('serves the bootstrap script chaining to /boot/<mac>.ipxe on this server', async () => {
    const res = await fetch(`${d.url}/boot.ipxe`);
    expect(res.status).toBe(200);
    const script = await res.text();
    expect(script.startsWith('#!ipxe\n')).toBe(true);
    expect(script).toContain(`chain --autofree --replace ${d.url}/boot/\${net0/mac}.ipxe?buildarch=`);
  });

  it('gives an unknown MAC the discovery script, then lists it as discovered with its facts', async () => {
    const mac = '52:54:00:00:00:42';
    const res = await fetch(`${d.url}/boot/52-54-00-00-00-42.ipxe?buildarch=x86_64&platform=efi&firmware=extra`);
    expect(res.status).toBe(200);
    const script = await res.text();
    expect(script.startsWith('#!ipxe\n')).toBe(true);
    expect(script).toContain('params --name discover');
    expect(script).toContain(`imgfetch --name discover-report ${d.url}/v1/discover##params=discover`);
    expect(script).toContain(`chain --autofree --replace ${d.url}/boot/${mac}.ipxe`);

    const { items } = (await call('GET', '/v1/hosts?state=discovered')).json as { items: Record<string, any>[] };
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ mac, state: 'discovered', hostname: null, lastIp: '127.0.0.1', facts: { buildarch: 'x86_64', platform: 'efi' } });

    // What iPXE's "params" then POSTs: a form, no token.
    const form = new URLSearchParams({ mac, buildarch: 'x86_64', platform: 'efi', uuid: '', manufacturer: 'QEMU', product: 'Standard PC (Q35)', serial: '' });
    const report = await fetch(`${d.url}/v1/discover`, { method: 'POST', body: form });
    expect(report.status).toBe(202);
    expect(await report.json()).toEqual({ mac, state: 'discovered' });
    const host = (await call('GET', `/v1/hosts/${mac}`)).json;
    expect(host.facts).toEqual({ buildarch: 'x86_64', platform: 'efi', manufacturer: 'QEMU', product: 'Standard PC (Q35)' });
  });

  it('refuses the API without the token and with another one', async () => {
    expect((await api(d, null)('GET', '/v1/hosts')).status).toBe(401);
    const wrong = await api(d, 'not-the-token')('GET', '/v1/hosts');
    expect(wrong.status).toBe(401);
    expect(wrong.json).toMatchObject({ error: 'Unauthorized', field: 'authorization' });
  });
});

describe('the API token file', () => {
  let stateDir: string;
  let first: TestDaemon | undefined;
  let second: TestDaemon | undefined;
  afterAll(async () => {
    await first?.cleanup();
    await second?.cleanup();
    if (stateDir) (await import('node:fs')).rmSync(stateDir, { recursive: true, force: true });
  });

  it('is created 0600 in a 0700 stateDir when no token is configured, and works as the bearer token', async () => {
    first = await startTestDaemon();
    stateDir = first.stateDir;
    const file = join(stateDir, 'api-token');
    expect(first.daemon.apiTokenFile).toBe(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(stateDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(stateDir, 'hiveboot.db')).mode & 0o777).toBe(0o600);
    const token = readFileSync(file, 'utf8').trim();
    expect(token.length).toBeGreaterThanOrEqual(32);

    const ok = await api(first, token)('GET', '/v1/hosts');
    expect(ok.status).toBe(200);
    expect(ok.json).toEqual({ items: [] });
    expect((await api(first, `${token}x`)('GET', '/v1/hosts')).status).toBe(401);
    expect((await api(first, token)('POST', '/v1/hosts', { mac: MAC })).status).toBe(201);

    // The log says where the token is, never what it is.
    expect(first.log.lines().some((l) => l.msg === 'created a new API token (read it from this file)' && l.file === file)).toBe(true);
    expect(first.log.text()).not.toContain(token);
  });

  it('is kept across a restart: same token, same hosts, no new token logged', async () => {
    const token = readFileSync(join(stateDir, 'api-token'), 'utf8').trim();
    await first!.daemon.stop();
    second = await startTestDaemon({ stateDir });
    const res = await api(second, token)('GET', '/v1/hosts');
    expect(res.status).toBe(200);
    expect((res.json.items as { mac: string }[]).map((h) => h.mac)).toEqual([MAC]);
    expect(readFileSync(join(stateDir, 'api-token'), 'utf8').trim()).toBe(token);
    expect(second.log.text()).not.toContain('created a new API token');
  });
});

describe('graceful stop', () => {
  it('finishes in-flight requests, refuses new connections, then closes the database', async () => {
    const d = await startTestDaemon({ api: { token: TOKEN } });
    const port = Number(new URL(d.url).port);
    try {
      // An idle kept-alive connection (fetch pools it) must not hold the stop up.
      expect((await fetch(`${d.url}/healthz`)).status).toBe(200);

      const macs = ['52:54:00:00:01:01', '52:54:00:00:01:02', '52:54:00:00:01:03', '52:54:00:00:01:04', '52:54:00:00:01:05'];
      const requests = macs.map((mac, i) => slowRequest(port, '/v1/hosts', TOKEN, JSON.stringify({ mac, hostname: `slow-${i}` })));
      const received = () => d.log.lines().filter((l) => l.msg === 'incoming request' && (l.req as { url?: string })?.url === '/v1/hosts').length;
      await until('the server to receive every request', () => received() === macs.length);

      let stopped = false;
      const stopping = d.daemon.stop().then(() => {
        stopped = true;
      });
      await until('new connections to be refused', () => refused(port));
      // The answers are not sent yet, so the stop waits for them.
      await new Promise((r) => setTimeout(r, 100));
      expect(stopped).toBe(false);
      expect(d.daemon.inventory.db.open).toBe(true);

      for (const r of requests) r.finish();
      const responses = await Promise.all(requests.map((r) => r.response));
      for (const [i, res] of responses.entries()) {
        expect(res.status, res.body).toBe(201);
        expect(JSON.parse(res.body)).toMatchObject({ mac: macs[i], hostname: `slow-${i}` });
        // The socket is let go after its answer rather than kept alive.
        expect(res.headers.connection).toBe('close');
      }

      await stopping;
      expect(stopped).toBe(true);
      expect(d.daemon.inventory.db.open).toBe(false);
      expect(await refused(port)).toBe(true);
      await expect(fetch(`${d.url}/healthz`)).rejects.toThrow();
      expect(d.log.lines().at(-1)).toMatchObject({ msg: 'hiveboot stopped' });

      // What was answered was committed.
      const inv = Inventory.open(join(d.stateDir, 'hiveboot.db'));
      try {
        expect(inv.hosts.list().map((h) => h.mac).sort()).toEqual(macs);
      } finally {
        inv.close();
      }
    } finally {
      await d.cleanup();
    }
  });

  it('stops promptly when idle, and stop() may be called twice', async () => {
    const d = await startTestDaemon({ api: { token: TOKEN } });
    try {
      for (let i = 0; i < 5; i++) expect((await fetch(`${d.url}/boot/${MAC}.ipxe`)).status).toBe(200);
      const t0 = Date.now();
      const a = d.daemon.stop();
      const b = d.daemon.stop();
      await Promise.all([a, b]);
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(d.daemon.inventory.db.open).toBe(false);
      expect(d.log.lines().filter((l) => l.msg === 'hiveboot stopped')).toHaveLength(1);
    } finally {
      await d.cleanup();
    }
  });
});
