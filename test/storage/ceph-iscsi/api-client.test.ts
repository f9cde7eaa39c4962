// The rbd-target-api client's transport: form bodies, Basic auth, retries only for GETs, failover only
// when a request could not be sent, timeouts, TLS with a CA or without checks, errors without secrets.
// HTTPS is tried against the FAKE rbd-target-api (test/support/fake-rbd-target-api.ts; LIO cannot run
// here, so the real API cannot either), the rest against bare HTTP servers.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GatewayApi, GatewayApiError, type GatewayApiOptions } from '../../../src/storage/ceph-iscsi/api-client.js';
import { FakeRbdTargetApi } from '../../support/fake-rbd-target-api.js';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** An HTTP server answering each request with the next reply (the last one repeats); null: never answer. */
async function server(...replies: ([number, string] | null)[]): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const srv = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString() });
      const reply = replies[Math.min(seen.length - 1, replies.length - 1)];
      if (reply) res.writeHead(reply[0], { 'content-type': 'application/json' }).end(reply[1]);
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  cleanups.push(() => {
    srv.closeAllConnections();
    return new Promise((r) => srv.close(() => r()));
  });
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, seen };
}

/** A port nothing listens on. */
async function closedPort(): Promise<string> {
  const srv = http.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return `http://127.0.0.1:${port}`;
}

function client(urls: string[], over: Partial<GatewayApiOptions> = {}): GatewayApi {
  const api = new GatewayApi({ urls, user: 'admin', password: 'api-Pa55word', timeoutMs: 2000, retryDelayMs: 5, ...over });
  cleanups.push(() => api.close());
  return api;
}

describe('rbd-target-api client: requests', () => {
  it('sends form-encoded bodies (leaving out undefined fields) with Basic auth, under <base>/api/', async () => {
    const s = await server([200, '{"message":"client auth successful"}']);
    const api = client([`${s.url}/ceph/api/`]);
    const message = await api.put(['clientauth', 'iqn.2003-01.com.example:gw', 'iqn.2026-11.test:m01'], {
      username: 'machine01',
      password: 'secret/pass_01',
      mutual_username: undefined,
    });
    expect(message).toBe('client auth successful');
    const [req] = s.seen;
    expect(req!.method).toBe('PUT');
    expect(decodeURIComponent(req!.url)).toBe('/ceph/api/clientauth/iqn.2003-01.com.example:gw/iqn.2026-11.test:m01');
    expect(req!.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(req!.body).toBe('username=machine01&password=secret%2Fpass_01');
    expect(req!.headers.authorization).toBe(`Basic ${Buffer.from('admin:api-Pa55word').toString('base64')}`);
  });

  it('sends a GET without a body and with its query', async () => {
    const s = await server([200, '{"targets":{}}']);
    expect(await client([s.url]).get(['config'], { decrypt_passwords: 'true' })).toEqual({ targets: {} });
    expect(s.seen[0]).toMatchObject({ method: 'GET', url: '/api/config?decrypt_passwords=true', body: '' });
    expect(s.seen[0]!.headers['content-type']).toBeUndefined();
  });

  it('refuses URLs that carry credentials or are not http(s)', () => {
    expect(() => new GatewayApi({ urls: ['http://admin:pw@gw1:5000'], user: 'a', password: 'b', timeoutMs: 10 })).toThrow(/not in the URL/);
    expect(() => new GatewayApi({ urls: ['ftp://gw1'], user: 'a', password: 'b', timeoutMs: 10 })).toThrow(/http:\/\/ or https:\/\//);
  });
});

describe('rbd-target-api client: failures', () => {
  it('retries a GET on no answer or 503, but never a change', async () => {
    const s = await server([503, '{"message":"busy"}'], [200, '{"data":"gw1"}']);
    expect(await client([s.url]).get(['sysinfo', 'hostname'])).toEqual({ data: 'gw1' });
    expect(s.seen).toHaveLength(2);

    const p = await server([503, '{"message":"client create/update failed, gateway(s) unavailable:gw2(UNKNOWN state)"}']);
    const err = (await client([p.url]).put(['client', 't', 'c']).catch((e: unknown) => e)) as GatewayApiError;
    expect(err).toBeInstanceOf(GatewayApiError);
    expect(err.status).toBe(503);
    expect(err.call).toBe('PUT /api/client/t/c');
    expect(err.gatewayMessage).toBe('client create/update failed, gateway(s) unavailable:gw2(UNKNOWN state)');
    expect(p.seen).toHaveLength(1);
  });

  it('does not retry a GET the gateway refused (4xx)', async () => {
    const s = await server([403, '{"message":"API access not available to 192.0.2.9"}']);
    await expect(client([s.url]).get(['config'])).rejects.toMatchObject({ status: 403, gatewayMessage: 'API access not available to 192.0.2.9' });
    expect(s.seen).toHaveLength(1);
  });

  it('goes to the next URL when one cannot be reached, for changes too, and keeps using the one that answered', async () => {
    const dead = await closedPort();
    const s = await server([200, '{"message":"Target defined successfully"}']);
    const api = client([dead, s.url]);
    expect(await api.put(['target', 'iqn.2003-01.com.example:gw'])).toBe('Target defined successfully');
    expect(api.currentUrl).toBe(s.url);
    expect(await api.put(['target', 'iqn.2003-01.com.example:gw'])).toBe('Target defined successfully');
    expect(s.seen).toHaveLength(2);
  });

  it('reports every URL when none can be reached', async () => {
    const [a, b] = [await closedPort(), await closedPort()];
    const err = (await client([a, b], { getAttempts: 2 }).get(['config']).catch((e: unknown) => e)) as GatewayApiError;
    expect(err.unreachable).toBe(true);
    expect(err.gatewayMessage).toBe(`cannot reach rbd-target-api (${new URL(a).host}: ECONNREFUSED; ${new URL(b).host}: ECONNREFUSED)`);
  });

  it('gives up on a change that gets no answer in time, says it may have been made, and does not send it again', async () => {
    const s = await server(null);
    const dead = await closedPort();
    const err = (await client([s.url, dead], { timeoutMs: 300 }).put(['target', 'x']).catch((e: unknown) => e)) as GatewayApiError;
    expect(err.unreachable).toBe(true);
    expect(err.gatewayMessage).toBe('no answer within 300 ms (the change may or may not have been made)');
    expect(s.seen).toHaveLength(1);
  });

  it('takes the message from JSON, or the text of anything else, and never repeats the password or a form value', async () => {
    const s = await server([502, '<html><body><h1>502 Bad Gateway</h1>\n<p>nginx</p></body></html>']);
    const err = (await client([s.url], { getAttempts: 1 })
      .put(['clientauth', 't', 'c'], { username: 'machine01', password: 'Chap-Secret-001' })
      .catch((e: unknown) => e)) as GatewayApiError;
    expect(err.gatewayMessage).toBe('502 Bad Gateway nginx');
    const everything = `${err.message} ${err.stack} ${JSON.stringify(err)}`;
    expect(everything).not.toContain('Chap-Secret-001');
    expect(everything).not.toContain('api-Pa55word');
    expect(everything).not.toContain(Buffer.from('admin:api-Pa55word').toString('base64'));
  });

  it('says when a 200 answer is not JSON (a URL that is not an rbd-target-api)', async () => {
    const s = await server([200, '<html>welcome</html>']);
    await expect(client([s.url]).get(['config'])).rejects.toThrow(/answer is not JSON \(is this URL an rbd-target-api\?\)/);
  });
});

describe('rbd-target-api client: https', () => {
  let dir: string;
  let key: Buffer;
  let cert: Buffer;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'hiveboot-tls-'));
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1']
        .concat(['-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]),
      { stdio: 'ignore' },
    );
    key = readFileSync(join(dir, 'key.pem'));
    cert = readFileSync(join(dir, 'cert.pem'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function tlsFake(): Promise<FakeRbdTargetApi> {
    const fake = new FakeRbdTargetApi({ thisHost: 'gw1', hosts: { gw1: ['192.0.2.11'] }, tls: { key, cert } });
    await fake.start();
    cleanups.push(() => fake.stop());
    return fake;
  }

  it('checks the gateway\'s certificate against the configured CA', async () => {
    const fake = await tlsFake();
    expect(fake.url).toMatch(/^https:/);
    expect(await client([fake.url], { user: 'admin', password: 'admin', ca: cert }).get(['sysinfo', 'hostname'])).toEqual({ data: 'gw1' });
  });

  it('refuses an unknown certificate unless told not to check (api_ssl_verify = false)', async () => {
    const fake = await tlsFake();
    const err = (await client([fake.url], { user: 'admin', password: 'admin', getAttempts: 1 }).get(['sysinfo', 'hostname']).catch((e: unknown) => e)) as GatewayApiError;
    expect(err.unreachable).toBe(true);
    expect(err.gatewayMessage).toMatch(/SELF_SIGNED|self-signed/i);
    expect(fake.calls).toEqual([]);
    expect(await client([fake.url], { user: 'admin', password: 'admin', insecure: true }).get(['sysinfo', 'hostname'])).toEqual({ data: 'gw1' });
  });
});
