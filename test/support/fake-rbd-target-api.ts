// A FAKE rbd-target-api (ceph-iscsi's REST API on a Ceph iSCSI gateway), for tests.
//
// Why a fake: every call of the real API that changes something configures LIO (the kernel iSCSI
// target) through configfs first, and this machine has neither configfs nor LIO, so the real daemon
// answers 500 to every change (observed; ../shared/eval/ceph/ceph-iscsi-api.md section 1).
//
// What it is built from: that contract document and ceph-iscsi 3.5's source (Debian's ceph-iscsi
// 3.5-3: /usr/bin/rbd-target-api, ceph_iscsi_config/*.py, gwcli/utils.py), read, not copied. It keeps
// the same routes and methods, form-encoded bodies (a JSON body is an empty form, as Flask's
// request.form sees it), the access checks in their order (source address against the gateways'
// addresses, localhost, the targets' ip_list and trusted_ip_list → 403; then Basic auth → 401),
// the config object's shape (GET /api/config), the state machine (target → portals → disks → target
// LUNs → clients → CHAP and client LUNs), the validation rules in their order, and the messages and
// status codes, including the "Unhandled exception: '<key>'" 500s that a missing key causes.
//
// What it simplifies: one process plays every gateway. Each gateway's API and iSCSI service can be
// marked down; the API's pre-flight ping of the gateways then fails the call with the real texts
// ("<gw>(UNKNOWN state)" for an API that refuses connections — ceph-iscsi turns a connection error
// into a 500 — and "<gw>(iscsi down, API up)"). A change is applied to the one shared config at once
// (the real API applies it gateway by gateway and can stop half-way). RBD images are asked of a
// callback; controls, host groups, snapshots, resize and discovery auth are not modelled.

import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { isIP } from 'node:net';

export interface FakeRbdTargetApiOptions {
  /** The gateway this API runs on (its socket.getfqdn()): "localhost" in call_api means this one. */
  thisHost: string;
  /** Every gateway machine that exists: name → its addresses (what resolves and what sysinfo/ip_addresses lists). */
  hosts: Record<string, string[]>;
  user?: string;
  password?: string;
  trustedIpList?: string[];
  /** ceph-iscsi's default is 2. */
  minimumGateways?: number;
  pools?: string[];
  /** Whether an RBD image exists (RBDDev); default: every image does. */
  imageExists?: (pool: string, image: string) => boolean;
  /** Store CHAP passwords encrypted, as the gateways do when iscsi-gateway.key and -pub.key exist. */
  encryptPasswords?: boolean;
  /** The source address the API sees (over loopback the real API always trusts the caller, as localhost). */
  callerAddress?: string;
  tls?: { key: string | Buffer; cert: string | Buffer };
}

export interface RecordedCall {
  method: string;
  /** Decoded, e.g. /api/target/iqn.2003-01.com.example:gw */
  path: string;
  query: Record<string, string>;
  form: Record<string, string>;
  status: number;
  message: string | undefined;
}

interface Chap {
  username: string;
  password: string;
  password_encryption_enabled: boolean;
  mutual_username: string;
  mutual_password: string;
  mutual_password_encryption_enabled: boolean;
}

interface Portal {
  tpgs: number;
  gateway_ip_list: string[];
  portal_ip_addresses: string[];
  inactive_portal_ips: string[];
}

interface Client {
  auth: Chap;
  luns: Record<string, { lun_id: number }>;
  group_name: string;
}

interface Target {
  disks: Record<string, { lun_id: number }>;
  clients: Record<string, Client>;
  acl_enabled: boolean;
  auth: Chap;
  portals: Record<string, Portal>;
  groups: Record<string, unknown>;
  controls: Record<string, unknown>;
  ip_list?: string[];
}

interface Disk {
  wwn: string;
  image: string;
  pool: string;
  allocating_host: string;
  pool_id: number;
  controls: Record<string, unknown>;
  backstore: string;
  backstore_object_name: string;
  owner: string;
}

export interface FakeGatewayConfig {
  created: string;
  updated: string;
  epoch: number;
  version: number;
  disks: Record<string, Disk>;
  gateways: Record<string, { active_luns: number }>;
  targets: Record<string, Target>;
  discovery_auth: Chap;
}

type Reply = [status: number, body: unknown];

/** A dict lookup that fails the way Python's does: the request ends in 500 "Unhandled exception: '<key>'". */
class KeyErr extends Error {
  constructor(key: string) {
    super(`'${key}'`);
  }
}
/** Any other Python exception the source would raise (AttributeError, TypeError…). */
class PyErr extends Error {}
/** get_remote_gateways' CephiSCSIError: the endpoints answer it as 400 with its text. */
class NotAPortal extends Error {}

function key<V>(dict: Record<string, V>, k: string): V {
  if (!Object.prototype.hasOwnProperty.call(dict, k)) throw new KeyErr(k);
  return dict[k]!;
}

const msg = (status: number, message: string): Reply => [status, { message }];
const noChap = (): Chap => ({
  username: '',
  password: '',
  password_encryption_enabled: false,
  mutual_username: '',
  mutual_password: '',
  mutual_password_encryption_enabled: false,
});
const BACKSTORES = ['user:rbd'];
/** rtslib's normalize_wwn(['iqn'], …): lower-cased, the iqn. form. */
const IQN = /^iqn\.\d{4}-[0-1]\d\.[^ _]*$/;
const USER_RE = /^[\w\\.:@_-]{8,64}$/;
const PASSWORD_RE = /^[\w@\-_/]{12,16}$/;
const NAME_RE = /^[a-zA-Z0-9\-_.]+$/;
const NOT_FOUND = 'Unhandled exception: 404 Not Found: The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.';
const NOT_ALLOWED = 'Unhandled exception: 405 Method Not Allowed: The method is not allowed for the requested URL.';

export class FakeRbdTargetApi {
  readonly config: FakeGatewayConfig;
  readonly calls: RecordedCall[] = [];
  /** Client logins, "<target>|<client>": such a client cannot be deleted. */
  readonly loggedIn = new Set<string>();
  /** Images rbd-target-api would have deleted with the disk (DELETE without preserve_image=true). */
  readonly deletedImages: string[] = [];
  /** Requests matching this get no answer until the fake stops (a hung gateway); recorded with status 0. */
  hangWhen: ((method: string, path: string) => boolean) | undefined;
  /** Called as each request arrives, before it is handled: a test changes state between a caller's read and its write. */
  onRequest: ((method: string, path: string) => void) | undefined;
  url = '';

  private readonly status = new Map<string, { api: 'up' | 'down'; iscsi: 'up' | 'down' }>();
  private server: http.Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly user: string;
  private readonly password: string;
  private readonly minimumGateways: number;
  private readonly pools: string[];
  private readonly imageExists: (pool: string, image: string) => boolean;
  private readonly encryptKey = randomBytes(8).toString('hex');

  constructor(private readonly opts: FakeRbdTargetApiOptions) {
    if (!opts.hosts[opts.thisHost]) throw new Error(`fake rbd-target-api: thisHost ${opts.thisHost} is not among hosts`);
    this.user = opts.user ?? 'admin';
    this.password = opts.password ?? 'admin';
    this.minimumGateways = opts.minimumGateways ?? 2;
    this.pools = opts.pools ?? ['rbd'];
    this.imageExists = opts.imageExists ?? (() => true);
    this.config = {
      created: new Date().toISOString(),
      updated: '',
      epoch: 0,
      version: 11,
      disks: {},
      gateways: {},
      targets: {},
      discovery_auth: noChap(),
    };
  }

  async start(port = 0): Promise<string> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => void this.handle(req, res);
    const server = this.opts.tls ? https.createServer({ key: this.opts.tls.key, cert: this.opts.tls.cert }, handler) : http.createServer(handler);
    server.on(this.opts.tls ? 'secureConnection' : 'connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.url = `${this.opts.tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this.url;
  }

  /** Stops listening (the API of thisHost is then unreachable); the config is kept for a restart. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  get port(): number {
    return Number(new URL(this.url).port);
  }

  /** Marks a gateway's API or iSCSI service down or up (for the other gateways' view of it). */
  setGateway(name: string, state: { api?: 'up' | 'down'; iscsi?: 'up' | 'down' }): void {
    this.status.set(name, { ...this.gatewayStatus(name), ...state });
  }

  /** Every call that may change something (all but GET), in order. */
  mutatingCalls(): RecordedCall[] {
    return this.calls.filter((c) => c.method !== 'GET');
  }

  /** The password as a caller reads it from GET /api/config?decrypt_passwords=true. */
  private decrypt(stored: string, encrypted: boolean): string {
    return encrypted && stored.startsWith(`enc:${this.encryptKey}:`) ? Buffer.from(stored.split(':')[2]!, 'base64').toString('utf8') : stored;
  }

  private gatewayStatus(name: string) {
    return this.status.get(name) ?? { api: 'up' as const, iscsi: 'up' as const };
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? '/', 'http://fake');
    const path = decodeURIComponent(url.pathname);
    const method = req.method ?? 'GET';
    const query = Object.fromEntries(url.searchParams);
    const isForm = (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
    const form = isForm ? Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))) : {};
    this.onRequest?.(method, path);
    if (this.hangWhen?.(method, path)) {
      this.calls.push({ method, path, query, form, status: 0, message: undefined });
      return; // never answered; the socket goes when the caller gives up or the fake stops
    }
    let reply: Reply;
    try {
      reply = this.route(req, method, path, query, form);
    } catch (err) {
      if (err instanceof KeyErr || err instanceof PyErr) reply = msg(500, `Unhandled exception: ${err.message}`);
      else if (err instanceof NotAPortal) reply = msg(400, err.message);
      else throw err;
    }
    const [status, body] = reply;
    this.calls.push({ method, path, query, form, status, message: (body as { message?: string }).message });
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private route(req: http.IncomingMessage, method: string, path: string, query: Record<string, string>, form: Record<string, string>): Reply {
    const seg = path.split('/').filter(Boolean);
    if (seg[0] !== 'api') return msg(500, NOT_FOUND);
    if (seg.length === 1) return method === 'GET' ? [200, { api: [] }] : msg(500, NOT_ALLOWED);
    const [, name, a, b] = seg as [string, string, string | undefined, string | undefined];

    if (name === 'sysinfo' && seg.length === 3) {
      if (method !== 'GET') return msg(500, NOT_ALLOWED);
      return this.basicAuth(req) ?? this.sysinfo(a!);
    }
    const routes: Record<string, { args: number; methods: string[]; fn: () => Reply }> = {
      _ping: { args: 0, methods: ['GET'], fn: () => this.ping() },
      config: { args: 0, methods: ['GET'], fn: () => this.getConfig(query) },
      targets: { args: 0, methods: ['GET'], fn: () => [200, { targets: Object.keys(this.config.targets) }] },
      disks: { args: 0, methods: ['GET'], fn: () => [200, { disks: Object.keys(this.config.disks) }] },
      target: { args: 1, methods: ['PUT', 'DELETE'], fn: () => (method === 'PUT' ? this.putTarget(a!, form) : this.deleteTarget(a!)) },
      gateways: { args: 1, methods: ['GET'], fn: () => this.withIqn(a!, (t) => [200, key(this.config.targets, t).portals]) },
      gateway: { args: 2, methods: ['PUT', 'DELETE'], fn: () => (method === 'PUT' ? this.putGateway(a!, b!, form) : this.deleteGateway(a!, b!, form)) },
      disk: { args: 2, methods: ['GET', 'PUT', 'DELETE'], fn: () => this.disk(method, a!, b!, form) },
      targetlun: { args: 1, methods: ['PUT', 'DELETE'], fn: () => this.targetLun(method, a!, form) },
      clients: { args: 1, methods: ['GET'], fn: () => this.withIqn(a!, (t) => [200, { clients: Object.keys(key(this.config.targets, t).clients) }]) },
      client: { args: 2, methods: ['PUT', 'DELETE'], fn: () => this.client(method, a!, b!) },
      clientauth: { args: 2, methods: ['PUT'], fn: () => this.clientAuth(a!, b!, form) },
      clientlun: { args: 2, methods: ['PUT', 'DELETE'], fn: () => this.clientLun(method, a!, b!, form) },
      _clientlun: { args: 2, methods: ['GET'], fn: () => this.getClientLuns(a!, b!) },
      clientinfo: { args: 2, methods: ['GET'], fn: () => this.clientInfo(a!, b!) },
      targetinfo: { args: 1, methods: ['GET'], fn: () => [200, { num_sessions: [...this.loggedIn].filter((l) => l.startsWith(`${a}|`)).length }] },
      targetauth: { args: 1, methods: ['PUT'], fn: () => this.targetAuth(a!, form) },
    };
    const r = routes[name];
    if (!r || seg.length !== 2 + r.args) return msg(500, NOT_FOUND);
    if (!r.methods.includes(method)) return msg(500, NOT_ALLOWED);
    return this.restrictedAuth(req) ?? r.fn();
  }

  // ---- access checks (requires_basic_auth, requires_restricted_auth) ----

  private basicAuth(req: http.IncomingMessage): Reply | undefined {
    const header = req.headers.authorization;
    if (!header?.startsWith('Basic ')) return msg(401, 'Missing credentials');
    const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
    const sep = decoded.indexOf(':');
    if (decoded.slice(0, sep) !== this.user || decoded.slice(sep + 1) !== this.password) {
      return msg(401, 'username/password mismatch with the configuration file');
    }
    return undefined;
  }

  private restrictedAuth(req: http.IncomingMessage): Reply | undefined {
    const allowed = [
      ...Object.keys(this.config.gateways).flatMap((gw) => this.resolve(gw)),
      ...this.resolve('localhost'),
      ...Object.values(this.config.targets).flatMap((t) => (t.ip_list ?? []).flatMap((ip) => this.resolve(ip))),
      ...(this.opts.trustedIpList ?? []),
    ];
    const remote = (this.opts.callerAddress ?? req.socket.remoteAddress ?? '').split('%')[0]!.split('::ffff:').pop()!;
    if (!allowed.includes(remote)) return msg(403, `API access not available to ${remote}`);
    return this.basicAuth(req);
  }

  private resolve(name: string): string[] {
    if (name === 'localhost') return ['127.0.0.1', '::1'];
    if (isIP(name)) return [name];
    return this.opts.hosts[name] ?? [];
  }

  // ---- helpers standing for parts of ceph-iscsi ----

  /** normalize_wwn(['iqn'], …) on a path element; invalid → 500 "Invalid iqn …". */
  private withIqn(iqn: string, fn: (iqn: string) => Reply): Reply {
    const n = iqn.toLowerCase();
    if (!IQN.test(n)) return msg(500, `Invalid iqn ${iqn} - WWN not valid as: iqn`);
    return fn(n);
  }

  private withIqns(t: string, c: string, fn: (t: string, c: string) => Reply): Reply {
    return this.withIqn(t, (tn) => this.withIqn(c, (cn) => fn(tn, cn)));
  }

  /** call_api's pre-flight: every gateway in the list must answer /api/_ping with 200. */
  private unavailable(gateways: string[]): string | undefined {
    const down: string[] = [];
    for (const gw of gateways) {
      const name = gw === 'localhost' ? this.opts.thisHost : gw;
      const st = this.gatewayStatus(name);
      if (st.api === 'down') down.push(`${gw}(UNKNOWN state)`);
      else if (st.iscsi === 'down' && name in this.config.gateways) down.push(`${gw}(iscsi down, API up)`);
    }
    return down.length > 0 ? `failed, gateway(s) unavailable:${down.join(',')}` : undefined;
  }

  /** get_remote_gateways(portals): this host must be one of them. */
  private remoteGateways(portals: Record<string, unknown>): string[] {
    const names = Object.keys(portals);
    if (!names.includes(this.opts.thisHost)) {
      throw new NotAPortal(
        `${this.opts.thisHost} cannot be used to perform this operation because it is not defined within the gateways configuration`,
      );
    }
    return names.filter((n) => n !== this.opts.thisHost);
  }

  private storeChap(username: string, password: string, mutualUsername: string, mutualPassword: string): Chap {
    const enc = (p: string) => (this.opts.encryptPasswords && p ? `enc:${this.encryptKey}:${Buffer.from(p).toString('base64')}` : p);
    const on = Boolean(this.opts.encryptPasswords);
    return {
      username,
      password: enc(password),
      password_encryption_enabled: on && password !== '',
      mutual_username: mutualUsername,
      mutual_password: enc(mutualPassword),
      mutual_password_encryption_enabled: on && mutualPassword !== '',
    };
  }

  private commit(): void {
    this.config.epoch++;
    this.config.updated = new Date().toISOString();
  }

  // ---- endpoints ----

  private sysinfo(type: string): Reply {
    switch (type) {
      case 'ip_addresses':
        return [200, { data: (this.opts.hosts[this.opts.thisHost] ?? []).filter((ip) => ip !== '127.0.0.1' && ip !== '::1') }];
      case 'hostname':
        return [200, { data: this.opts.thisHost }];
      case 'checkconf':
        return [200, { data: 'fake-settings-hash' }];
      case 'checkversions':
        return [200, { data: 'checks passed' }];
      default:
        return msg(404, 'Unknown /sysinfo query');
    }
  }

  private ping(): Reply {
    const iscsiDown = this.gatewayStatus(this.opts.thisHost).iscsi === 'down';
    return msg(this.opts.thisHost in this.config.gateways && iscsiDown ? 503 : 200, 'pong');
  }

  private getConfig(query: Record<string, string>): Reply {
    const copy = structuredClone(this.config);
    if ((query.decrypt_passwords ?? 'false').toLowerCase() === 'true') {
      const decrypt = (c: Chap) => {
        c.password = this.decrypt(c.password, c.password_encryption_enabled);
        c.mutual_password = this.decrypt(c.mutual_password, c.mutual_password_encryption_enabled);
      };
      decrypt(copy.discovery_auth);
      for (const t of Object.values(copy.targets)) {
        decrypt(t.auth);
        for (const c of Object.values(t.clients)) decrypt(c.auth);
      }
    }
    return [200, copy];
  }

  private putTarget(iqn: string, form: Record<string, string>): Reply {
    return this.withIqn(iqn, (t) => {
      const mode = form.mode;
      if (mode !== undefined && mode !== 'reconfigure') return msg(500, `Unexpected mode provided for ${t} - ${mode}`);
      if (mode === 'reconfigure') {
        if (!this.config.targets[t]) return msg(400, `Target: ${t} is not defined.`);
        return msg(200, 'Target reconfigured.');
      }
      if (!this.config.targets[t]) {
        this.config.targets[t] = { disks: {}, clients: {}, acl_enabled: true, auth: noChap(), portals: {}, groups: {}, controls: {} };
        this.commit();
      }
      return msg(200, 'Target defined successfully');
    });
  }

  private deleteTarget(iqn: string): Reply {
    return this.withIqn(iqn, (t) => {
      const target = this.config.targets[t];
      const hosts = target && Object.keys(target.portals).length > 0 ? Object.keys(target.portals) : [this.opts.thisHost];
      const down = this.unavailable(hosts);
      if (down) return msg(503, down);
      // _target DELETE on each portal: clearconfig reads targets[<iqn>] first.
      if (!target) return msg(500, `failed on ${hosts[0]}. Unhandled exception: '${t}'`);
      delete this.config.targets[t];
      this.dropUnusedGateways();
      this.commit();
      return msg(200, 'Target deleted.');
    });
  }

  private dropUnusedGateways(): void {
    for (const gw of Object.keys(this.config.gateways)) {
      if (!Object.values(this.config.targets).some((t) => gw in t.portals)) delete this.config.gateways[gw];
    }
  }

  private putGateway(iqn: string, gw: string, form: Record<string, string>): Reply {
    return this.withIqn(iqn, (t) => {
      const target = key(this.config.targets, t);
      if (gw in target.portals) return msg(400, 'Gateway already exists in configuration');
      if (form.ip_address === undefined) throw new PyErr("'NoneType' object has no attribute 'split'");
      const ips = form.ip_address.split(',');
      if ((form.skipchecks ?? 'false').toLowerCase() !== 'true') {
        const problem = this.validGateway(target, gw, ips);
        if (problem) return msg(400, problem);
      }
      const first = Object.keys(target.portals).length === 0;
      const order = first ? ['localhost'] : [gw, ...Object.keys(target.portals)];
      const down = this.unavailable(order);
      if (down) return msg(503, `Gateway creation ${down}`);
      // The first portal is made by the local gateway (call_api sends it to localhost), under its own name.
      const name = first ? this.opts.thisHost : gw;
      const ipList = [...(target.ip_list ?? []), ...ips];
      target.ip_list = ipList;
      // TPG portals are made active for the addresses the gateway machine has (ip_addresses()).
      const own = (n: string) => this.opts.hosts[n] ?? [];
      for (const [pname, portal] of Object.entries(target.portals)) {
        portal.gateway_ip_list = [...ipList];
        portal.inactive_portal_ips = ipList.filter((ip) => !portal.portal_ip_addresses.includes(ip));
        portal.tpgs = ipList.length;
        target.portals[pname] = portal;
      }
      const active = ipList.filter((ip) => own(name).includes(ip));
      target.portals[name] = {
        tpgs: ipList.length,
        gateway_ip_list: [...ipList],
        portal_ip_addresses: active,
        inactive_portal_ips: ipList.filter((ip) => !active.includes(ip)),
      };
      this.config.gateways[name] ??= { active_luns: 0 };
      this.commit();
      return msg(200, 'Gateway creation successful');
    });
  }

  /** gwcli.utils.valid_gateway: "ok" as undefined, else its message. */
  private validGateway(target: Target, gw: string, ips: string[]): string | undefined {
    if (gw in target.portals) return `Gateway name ${gw} already defined`;
    if (ips.some((ip) => (target.ip_list ?? []).includes(ip))) return 'IP address already defined to the configuration';
    if (this.resolve(gw).length === 0) return `Gateway '${gw}' is not resolvable to an IP address`;
    if (ips.some((ip) => this.resolve(ip).length === 0)) {
      return "IP address provided is not usable (name doesn't resolve, or not a valid IPv4/IPv6 address)";
    }
    if (this.gatewayStatus(gw).api === 'down') {
      return `ip_addresses query to ${gw} failed - check rbd-target-api log. Is the API server running and in the right mode (http/https)?`;
    }
    const available = this.resolve(gw).filter((ip) => ip !== '127.0.0.1' && ip !== '::1');
    const missing = ips.find((ip) => !available.includes(ip));
    if (missing) return `IP address of ${missing} is not available on ${gw}. Valid IPs are :${available.join(',')}`;
    return undefined;
  }

  private deleteGateway(iqn: string, gw: string, form: Record<string, string>): Reply {
    return this.withIqn(iqn, (t) => {
      const target = key(this.config.targets, t);
      if (!(gw in this.config.gateways)) return msg(404, 'Gateway does not exist in configuration');
      const others = Object.keys(target.portals).filter((p) => p !== gw);
      const force = (form.force ?? 'false').toLowerCase() === 'true' && gw !== this.opts.thisHost;
      const down = this.unavailable(force ? others : [gw, ...others]);
      if (down) return msg(503, `Gateway deletion ${down}`);
      const portal = target.portals[gw];
      if (portal) {
        delete target.portals[gw];
        target.ip_list = (target.ip_list ?? []).filter((ip) => !portal.portal_ip_addresses.includes(ip));
        if (Object.keys(target.portals).length === 0) Object.assign(target, { disks: {}, clients: {}, controls: {}, groups: {} });
      }
      this.dropUnusedGateways();
      this.commit();
      return msg(200, 'Gateway deletion successful');
    });
  }

  private disk(method: string, pool: string, image: string, form: Record<string, string>): Reply {
    const id = `${pool}/${image}`;
    if (method === 'GET') {
      const d = this.config.disks[id];
      return d ? [200, { ...d, status: { state: 'Unknown' } }] : msg(404, `rbd image ${id} not found`);
    }
    const mode = form.mode;
    const backstore = mode === 'create' ? (form.backstore ?? 'user:rbd') : key(this.config.disks, id).backstore;
    const gateways = mode === 'create' ? [] : Object.keys(this.config.gateways).filter((g) => g !== this.opts.thisHost);
    if (method === 'PUT') {
      const size = form.size;
      const count = form.count ?? '1';
      const problem = this.validDisk({ mode: mode ?? 'None', pool, image, size, count, backstore, wwn: form.wwn });
      if (problem) return msg(400, problem);
      const createImage = form.create_image ?? 'true';
      if (createImage !== 'true' && createImage !== 'false') return msg(400, `Invalid 'create_image' value ${createImage}`);
      if (mode === 'create' && (createImage === 'false' || !size) && !this.imageExists(pool, image)) {
        return createImage === 'true' ? msg(400, 'Size parameter is required when creating a new image') : msg(400, `Image ${id} does not exist`);
      }
      if (mode !== 'create') return msg(500, `fake rbd-target-api: disk mode ${mode} is not modelled`);
      const down = this.unavailable(['localhost', ...gateways]);
      if (down) return msg(503, `disk create/update ${down}`);
      this.config.disks[id] = {
        wwn: form.wwn ?? randomBytes(16).toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-'),
        image,
        pool,
        allocating_host: this.opts.thisHost,
        pool_id: this.pools.indexOf(pool) + 1,
        controls: {},
        backstore,
        backstore_object_name: `${pool}.${image}`,
        owner: '',
      };
      this.commit();
      return msg(200, 'disk create/update successful');
    }
    const problem = this.validDisk({ mode: 'delete', pool, image, backstore });
    if (problem) return msg(400, problem);
    const down = this.unavailable([...gateways, this.opts.thisHost]);
    if (down) return msg(503, `disk map deletion ${down}`);
    delete this.config.disks[id];
    if (form.preserve_image !== 'true') this.deletedImages.push(id);
    this.commit();
    return msg(200, 'disk map deletion successful');
  }

  /** LUN.valid_disk, in its order. */
  private validDisk(k: { mode: string; pool: string; image: string; size?: string; count?: string; backstore: string; wwn?: string }): string | undefined {
    if (!BACKSTORES.includes(k.backstore)) return `Invalid '${k.backstore}' backstore - Supported backstores: ${BACKSTORES.join(',')}`;
    const modes: Record<string, string[]> = { create: ['pool', 'image', 'size', 'count'], resize: ['pool', 'image', 'size'], delete: ['pool', 'image'] };
    if (!modes[k.mode]) return `disk operation mode '${k.mode}' is invalid`;
    const id = `${k.pool}/${k.image}`;
    if ((k.mode === 'create' || k.mode === 'resize') && !this.pools.includes(k.pool)) return 'pool name is invalid';
    if (k.mode === 'create') {
      if (k.size && !/^\d+[KMGTPkmgtp]$/.test(k.size)) return 'Size is invalid';
      if (Object.keys(this.config.disks).length >= 256) return 'Disk limit of 256 reached.';
      if (!NAME_RE.test(k.pool)) return "Invalid pool name (use alphanumeric, '_', '.', or '-' characters)";
      if (!NAME_RE.test(k.image)) return "Invalid image name (use alphanumeric, '_', '.', or '-' characters)";
      if (k.wwn !== undefined) {
        const user = Object.entries(this.config.disks).find(([, d]) => d.wwn === k.wwn);
        if (user) return `WWN ${k.wwn} is already in use by ${user[0]}`;
      }
      if (!/^\d+$/.test(k.count!) || Number(k.count) < 1 || Number(k.count) > 10) return 'invalid count specified, must be an integer (1-10)';
      if (Number(k.count) > 1 && k.wwn !== undefined) return 'WWN cannot be specified when count > 1';
      const wanted = k.count === '1' ? [id] : Array.from({ length: Number(k.count) }, (_, i) => `${id}${i + 1}`);
      if (wanted.some((d) => d in this.config.disks)) return 'at least one rbd image(s) with that name/prefix is already defined';
    }
    if ((k.mode === 'resize' || k.mode === 'delete') && !(id in this.config.disks)) return `rbd ${id} is not defined to the configuration`;
    if (k.mode === 'delete') {
      const mapped: string[] = [];
      const allocated: string[] = [];
      for (const [t, target] of Object.entries(this.config.targets)) {
        if (id in target.disks) mapped.push(t);
        for (const [c, client] of Object.entries(target.clients)) if (id in client.luns) allocated.push(c);
      }
      if (allocated.length > 0) return `Unable to delete ${id}. Allocated to: ${allocated.join(',')}`;
      if (mapped.length > 0) return `Unable to delete ${id}. Mapped to: ${mapped.join(',')}`;
    }
    return undefined;
  }

  private targetLun(method: string, iqn: string, form: Record<string, string>): Reply {
    return this.withIqn(iqn, (t) => {
      const target = key(this.config.targets, t);
      if (Object.keys(target.portals).length < this.minimumGateways) {
        return msg(400, `at least ${this.minimumGateways} gateways must exist before disk mapping operations are permitted`);
      }
      const gateways = this.remoteGateways(target.portals);
      const d = form.disk ?? 'None';
      if (!(d in this.config.disks)) return msg(400, `Disk ${d} is not defined in the configuration`);
      if (method === 'PUT') {
        for (const [other, ot] of Object.entries(this.config.targets)) {
          if (d in ot.disks) return msg(400, `Disk ${d} cannot be used because it is already mapped on target ${other}`);
        }
        const [pool, image] = d.split('/') as [string, string];
        if (!this.imageExists(pool, image)) return msg(400, `Image ${d} not found`);
        const used = Object.values(target.disks).map((x) => x.lun_id);
        let lunId: number | undefined;
        if (form.lun_id !== undefined) {
          if (!/^[+-]?\d+$/.test(form.lun_id.trim())) return msg(400, 'Lun id must be a number');
          lunId = Number(form.lun_id);
          if (used.includes(lunId)) return msg(400, `Lun id ${form.lun_id} already in use`);
        }
        const down = this.unavailable([this.opts.thisHost, ...gateways]);
        if (down) return msg(503, `Add target LUN mapping failed - ${down}`);
        if (lunId === undefined) for (lunId = 0; used.includes(lunId); lunId++);
        const owner = Object.keys(target.portals).sort((x, y) => (this.config.gateways[x]?.active_luns ?? 0) - (this.config.gateways[y]?.active_luns ?? 0))[0]!;
        target.disks[d] = { lun_id: lunId };
        this.config.gateways[owner]!.active_luns++;
        this.config.disks[d]!.owner = owner;
      } else {
        if (!(d in target.disks)) return msg(400, `Disk ${d} is not defined in target ${t}`);
        const order = [...gateways, this.opts.thisHost];
        const down = this.unavailable(order);
        if (down) return msg(503, `Delete target LUN mapping failed - ${down}`);
        const allocated = Object.entries(target.clients).find(([, c]) => d in c.luns);
        if (allocated) {
          return msg(400, `Delete target LUN mapping failed - failed on ${order[0]}. Failed to remove the LUN - Unable to delete ${d} - allocated to ${allocated[0]}`);
        }
        delete target.disks[d];
        const owner = this.config.disks[d]!.owner;
        if (this.config.gateways[owner]) this.config.gateways[owner].active_luns--;
      }
      this.commit();
      return msg(200, 'Target LUN mapping updated successfully');
    });
  }

  private client(method: string, iqn: string, clientIqn: string): Reply {
    return this.withIqns(iqn, clientIqn, (t, c) => {
      const target = key(this.config.targets, t);
      const gateways = this.remoteGateways(target.portals);
      if (method === 'PUT') {
        if (c in target.clients) return msg(400, `A client with the name '${c}' is already defined`);
        if (target.auth.username && target.auth.password) return msg(400, 'Cannot create client because target CHAP authentication is enabled');
        if (Object.keys(this.config.gateways).length < this.minimumGateways) {
          return msg(400, `Clients can not be defined until a HA configuration has been defined (>${this.minimumGateways} gateways)`);
        }
        const down = this.unavailable(['localhost', ...gateways]);
        if (down) return msg(503, `client create/update ${down}`);
        target.clients[c] = { auth: noChap(), luns: {}, group_name: '' };
        this.commit();
        return msg(200, 'client create/update successful');
      }
      if (!(c in target.clients)) return msg(400, `${c} is not defined yet - nothing to delete`);
      if (this.loggedIn.has(`${t}|${c}`)) return msg(400, `Client '${c}' is logged in to ${t}- unable to delete until it's logged out`);
      const down = this.unavailable([...gateways, 'localhost']);
      if (down) return msg(503, `client delete ${down}`);
      delete target.clients[c];
      this.commit();
      return msg(200, 'client delete successful');
    });
  }

  private clientAuth(iqn: string, clientIqn: string, form: Record<string, string>): Reply {
    return this.withIqns(iqn, clientIqn, (t, c) => {
      const target = key(this.config.targets, t);
      const gateways = this.remoteGateways(target.portals);
      key(target.clients, c);
      const u = form.username ?? '';
      const p = form.password ?? '';
      const mu = form.mutual_username ?? '';
      const mp = form.mutual_password ?? '';
      const problem = validCredentials(u, p, mu, mp);
      if (problem) return msg(400, problem);
      const down = this.unavailable(['localhost', ...gateways]);
      if (down) return msg(503, `client auth ${down}`);
      target.clients[c]!.auth = this.storeChap(u, p, mu, mp);
      this.commit();
      return msg(200, 'client auth successful');
    });
  }

  private clientLun(method: string, iqn: string, clientIqn: string, form: Record<string, string>): Reply {
    return this.withIqns(iqn, clientIqn, (t, c) => {
      const target = key(this.config.targets, t);
      const gateways = this.remoteGateways(target.portals);
      const disk = form.disk;
      const client = key(target.clients, c);
      const luns = Object.keys(client.luns);
      if (method === 'PUT') {
        if (disk === undefined) throw new PyErr(`sequence item ${luns.length}: expected str instance, NoneType found`);
        luns.push(disk);
        if (!luns.every((d) => d in this.config.disks)) return msg(400, 'Invalid image list - it defines new disks that do not current exist');
      } else {
        if (disk === undefined || !luns.includes(disk)) return msg(400, 'disk not mapped to client');
        luns.splice(luns.indexOf(disk), 1);
      }
      const down = this.unavailable(['localhost', ...gateways]);
      if (down) return msg(503, `client masking update ${down}`);
      // _clientlun → GWClient.setup_luns: each image must already be a LUN of the target (its TPG).
      const missing = luns.find((d) => !(d in target.disks));
      if (missing) return msg(500, `client masking update failed on ${this.opts.thisHost}. Client update failed - ${missing} is missing from the tpg - unable to map`);
      client.luns = Object.fromEntries(luns.map((d) => [d, { lun_id: target.disks[d]!.lun_id }]));
      this.commit();
      return msg(200, 'client masking update successful');
    });
  }

  private getClientLuns(iqn: string, clientIqn: string): Reply {
    const target = key(this.config.targets, iqn);
    const client = target.clients[clientIqn];
    return client ? [200, { message: client.luns }] : msg(404, 'Client does not exist');
  }

  /** Asks each portal gateway (_clientinfo, through call_api) for the client's session. */
  private clientInfo(t: string, c: string): Reply {
    const target = this.config.targets[t];
    if (!target) return msg(404, `Target ${t} does not exist`);
    if (!target.clients[c]) return msg(404, `Client ${c} does not exist`);
    const state: Record<string, string[]> = {};
    for (const gw of Object.keys(target.portals)) {
      const down = this.unavailable([gw]);
      if (down) return msg(503, down);
      if (this.loggedIn.has(`${t}|${c}`)) (state.LOGGED_IN ??= []).push(gw);
    }
    return [200, { alias: '', state, ip_address: [] }];
  }

  private targetAuth(iqn: string, form: Record<string, string>): Reply {
    return this.withIqn(iqn, (t) => {
      const action = form.action;
      if (action && action !== 'disable_acl' && action !== 'enable_acl') return msg(400, `Invalid auth ${action}`);
      const target = key(this.config.targets, t);
      if (action === 'disable_acl' && Object.keys(target.clients).length > 0) return msg(400, 'Cannot disable ACL authentication because target has clients');
      if (action === 'enable_acl' && target.auth.username && target.auth.password) {
        return msg(400, 'Cannot enable ACL authentication because target CHAP authentication is enabled');
      }
      const u = form.username ?? '';
      const p = form.password ?? '';
      const mu = form.mutual_username ?? '';
      const mp = form.mutual_password ?? '';
      if (u && p && target.acl_enabled) return msg(400, 'Cannot enable target CHAP authentication because ACL authentication is enabled');
      const problem = validCredentials(u, p, mu, mp);
      if (problem) return msg(400, problem);
      const gateways = this.remoteGateways(target.portals);
      const down = this.unavailable([this.opts.thisHost, ...gateways]);
      if (down) return msg(503, `target auth ${action} - ${down}`);
      if (action) target.acl_enabled = action === 'enable_acl';
      target.auth = this.storeChap(u, p, mu, mp);
      this.commit();
      return msg(200, `target auth ${action} - successful`);
    });
  }
}

/** gwcli.utils.valid_credentials, in its order. */
function validCredentials(username: string, password: string, mutualUsername: string, mutualPassword: string): string | undefined {
  if (username && !password) return 'Password is required';
  if (!username && (password || mutualUsername)) return 'Username is required';
  if (mutualUsername && !mutualPassword) return 'Mutual password is required';
  if (!mutualUsername && mutualPassword) return 'Mutual username is required';
  const rules: [value: string, label: string, min: number, max: number, re: RegExp][] = [
    [username, 'username', 8, 64, USER_RE],
    [mutualUsername, 'mutual username', 8, 64, USER_RE],
    [password, 'password', 12, 16, PASSWORD_RE],
    [mutualPassword, 'mutual password', 12, 16, PASSWORD_RE],
  ];
  for (const [value, label, min, max, re] of rules) {
    if (!value) continue;
    if (value.length < min) return `Minimum length of ${label} is ${min} characters`;
    if (value.length > max) return `Maximum length of ${label} is ${max} characters`;
    if (!re.test(value)) return `Invalid ${label}`;
  }
  return undefined;
}
