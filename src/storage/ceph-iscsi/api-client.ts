// A client for ceph-iscsi's rbd-target-api (the REST API on every Ceph iSCSI gateway), as its source
// defines it (ceph-iscsi 3.5; ../shared/eval/ceph/ceph-iscsi-api.md): form-encoded request bodies,
// HTTP Basic auth, JSON answers {"message": "..."}. Transport only: what to ask for is the
// provisioner's business, and so is turning the gateway's messages into advice.
//
// Secrets: the API password and the CHAP secrets sent in forms never appear in an error or a log
// line; an error names the call (method and path: IQNs, pool and image names) and what the gateway
// answered.

import http from 'node:http';
import https from 'node:https';
import { printable } from '../../model/identifiers.js';

export interface GatewayApiOptions {
  /** Base URLs (http://gw1:5000 or .../api), tried in order; the one that last answered is tried first. */
  urls: string[];
  user: string;
  password: string;
  /** PEM CA bundle for https URLs. */
  ca?: string | Buffer;
  /** Accept any certificate (ceph-iscsi's own api_ssl_verify = false). */
  insecure?: boolean;
  /** Per request, connection included. */
  timeoutMs: number;
  /** How often a GET is tried before its failure is reported (GETs change nothing, so retrying is safe). */
  getAttempts?: number;
  /** Pause between GET attempts, doubled each time. */
  retryDelayMs?: number;
}

/** Form fields; undefined ones are left out, as Python requests leaves out None. */
export type Form = Record<string, string | undefined>;

/** The API refused or failed a call, or could not be reached (status undefined). */
export class GatewayApiError extends Error {
  constructor(
    /** "PUT /api/target/iqn…": what failed. */
    readonly call: string,
    /** The base URL that answered, or every one tried when none did. */
    readonly url: string,
    /** The HTTP status; undefined when no answer came. */
    readonly status: number | undefined,
    /** The gateway's own message ({"message": …}), or what went wrong on the way. */
    readonly gatewayMessage: string,
    options?: { cause?: unknown },
  ) {
    super(`${call} (${url}) ${status === undefined ? 'got no answer' : `answered HTTP ${status}`}: ${gatewayMessage}`, options);
    this.name = 'GatewayApiError';
  }

  get unreachable(): boolean {
    return this.status === undefined;
  }
}

interface Answer {
  status: number;
  body: string;
}

/** A failure before the request left this machine (refused, unresolvable, TLS): another URL may be tried, whatever the method. */
class NotSent extends Error {}

const MAX_MESSAGE = 500;

export class GatewayApi {
  /** Base URLs without a trailing slash or /api: "http://gw1:5000", "https://proxy/ceph". */
  private readonly bases: URL[];
  private readonly authorization: string;
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private preferred = 0;

  constructor(private readonly opts: GatewayApiOptions) {
    if (opts.urls.length === 0) throw new Error('rbd-target-api: no API URL given');
    this.bases = opts.urls.map((u) => {
      const url = new URL(u);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`rbd-target-api URL ${u}: must be http:// or https://`);
      if (url.username || url.password) throw new Error(`rbd-target-api URL ${url.host}: give the user and password file in the config, not in the URL`);
      url.pathname = url.pathname.replace(/\/+$/, '').replace(/\/api$/, '') || '/';
      url.search = '';
      url.hash = '';
      return url;
    });
    this.authorization = `Basic ${Buffer.from(`${opts.user}:${opts.password}`).toString('base64')}`;
    // No keep-alive: the gateway's server (Flask's) speaks HTTP/1.0, and a change must never be
    // written on a socket the server may be closing (it could not be told whether it arrived).
    this.httpAgent = new http.Agent({ keepAlive: false });
    this.httpsAgent = new https.Agent({ keepAlive: false, ca: opts.ca, rejectUnauthorized: !opts.insecure });
  }

  /** The base URL calls go to first: the one that last answered. */
  get currentUrl(): string {
    const base = this.bases[this.preferred]!;
    return base.origin + prefixOf(base);
  }

  /** A JSON answer. Retried (on every URL, getAttempts times) while no answer or a 502/503/504 comes. */
  async get<T>(path: string[], query: Record<string, string> = {}): Promise<T> {
    const attempts = Math.max(1, this.opts.getAttempts ?? 3);
    let delay = this.opts.retryDelayMs ?? 250;
    let last: GatewayApiError | undefined;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        const { body } = await this.call('GET', path, undefined, query);
        return parseJson(body, describeCall('GET', path), this.currentUrl) as T;
      } catch (err) {
        if (!(err instanceof GatewayApiError) || !(err.unreachable || (err.status! >= 502 && err.status! <= 504))) throw err;
        last = err;
      }
      if (attempt < attempts) {
        await new Promise((r) => setTimeout(r, delay));
        delay *= 2;
      }
    }
    throw last!;
  }

  /** A change; the gateway's message on success. Never retried: a re-run of the provisioner reads the state and completes it. */
  async put(path: string[], form: Form = {}): Promise<string> {
    return messageOf((await this.call('PUT', path, form)).body);
  }

  async delete(path: string[], form: Form = {}): Promise<string> {
    return messageOf((await this.call('DELETE', path, form)).body);
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  /**
   * One call: to the preferred URL, then the others while the request cannot be sent at all. A 2xx
   * answer is returned; any other answer, or none after the request was sent, is a GatewayApiError.
   */
  private async call(method: 'GET' | 'PUT' | 'DELETE', path: string[], form?: Form, query: Record<string, string> = {}): Promise<Answer> {
    const label = describeCall(method, path);
    const body = form && encodeForm(form);
    const refusals: string[] = [];
    for (let i = 0; i < this.bases.length; i++) {
      const index = (this.preferred + i) % this.bases.length;
      const base = this.bases[index]!;
      let answer: Answer;
      try {
        answer = await this.send(base, method, path, query, body);
      } catch (err) {
        if (err instanceof NotSent) {
          refusals.push(`${base.host}: ${err.message}`);
          continue;
        }
        throw new GatewayApiError(label, base.origin, undefined, (err as Error).message, { cause: err });
      }
      this.preferred = index;
      if (answer.status >= 200 && answer.status < 300) return answer;
      throw new GatewayApiError(label, base.origin, answer.status, messageOf(answer.body));
    }
    throw new GatewayApiError(label, this.bases.map((b) => b.origin).join(', '), undefined, `cannot reach rbd-target-api (${refusals.join('; ')})`);
  }

  private send(base: URL, method: string, path: string[], query: Record<string, string>, body: string | undefined): Promise<Answer> {
    const url = new URL(base.href);
    url.pathname = `${prefixOf(base)}/api/${path.map(encodeURIComponent).join('/')}`;
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    const secure = url.protocol === 'https:';
    const headers: http.OutgoingHttpHeaders = { authorization: this.authorization, accept: 'application/json' };
    if (body !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers['content-length'] = Buffer.byteLength(body);
    }
    return new Promise<Answer>((resolve, reject) => {
      let sent = false;
      let settled = false;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        fn();
      };
      const req = (secure ? https : http).request(url, { method, headers, agent: secure ? this.httpsAgent : this.httpAgent });
      const timer = setTimeout(() => {
        req.destroy(new Error(`no answer within ${this.opts.timeoutMs} ms${sent ? ' (the change may or may not have been made)' : ''}`));
      }, this.opts.timeoutMs);
      req.on('socket', (socket) => {
        // The request is written once the connection (and TLS) is up; before that nothing reached the gateway.
        if (!socket.connecting) sent = true;
        else socket.once(secure ? 'secureConnect' : 'connect', () => (sent = true));
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        const reason = err.code ? `${err.code}${err.message.includes(err.code) ? '' : ` ${err.message}`}` : err.message;
        finish(() => reject(sent ? new Error(reason) : new NotSent(reason)));
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => finish(() => reject(err)));
        res.on('end', () => finish(() => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') })));
      });
      req.end(body);
    });
  }
}

/** The base URL's path, "" at the root. */
function prefixOf(base: URL): string {
  return base.pathname.replace(/\/+$/, '');
}

/** "PUT /api/target/iqn…": the path as the API documents it (never a form value). */
function describeCall(method: string, path: string[]): string {
  return `${method} /api/${path.join('/')}`;
}

function encodeForm(form: Form): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) if (v !== undefined) params.append(k, v);
  return params.toString();
}

function parseJson(body: string, call: string, url: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    throw new GatewayApiError(call, url, 200, `answer is not JSON (is this URL an rbd-target-api?): ${printable(body, 120)}`);
  }
}

/** The gateway's {"message": "…"}, else the start of whatever it sent (an HTML error page, a proxy's text). */
function messageOf(body: string): string {
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    if (typeof parsed.message === 'string') return parsed.message;
    if (parsed.message !== undefined) return printable(JSON.stringify(parsed.message), MAX_MESSAGE);
  } catch {
    // not JSON: fall through
  }
  return printable(body.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim(), MAX_MESSAGE) || '(empty answer)';
}

// The parts of the gateway's config object (GET /api/config) the provisioner reads.

export interface GatewayChap {
  username: string;
  password: string;
  password_encryption_enabled?: boolean;
  mutual_username: string;
  mutual_password: string;
  mutual_password_encryption_enabled?: boolean;
}

export interface GatewayClient {
  auth: GatewayChap;
  luns: Record<string, { lun_id: number }>;
  group_name?: string;
}

export interface GatewayPortal {
  portal_ip_addresses: string[];
  gateway_ip_list?: string[];
  inactive_portal_ips?: string[];
  tpgs?: number;
}

export interface GatewayTarget {
  disks: Record<string, { lun_id: number }>;
  clients: Record<string, GatewayClient>;
  portals: Record<string, GatewayPortal>;
  acl_enabled: boolean;
  auth: GatewayChap;
  ip_list?: string[];
  groups?: Record<string, unknown>;
  controls?: Record<string, unknown>;
}

export interface GatewayConfig {
  disks: Record<string, { pool?: string; image?: string; owner?: string; wwn?: string }>;
  /** Gateway name → {active_luns}; older versions also keep non-object entries here. */
  gateways: Record<string, unknown>;
  targets: Record<string, GatewayTarget>;
  version?: number;
  epoch?: number;
}
