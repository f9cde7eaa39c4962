import { Type, type Static } from 'typebox';

/**
 * The one schema of hiveboot.yaml. Every field has a default, so a file that only sets listen
 * addresses (or no file at all) gives a working daemon. Later subsystems add their own sections here.
 */
export const LogLevel = Type.Union(
  ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
  { default: 'info' },
);

export const HttpConfig = Type.Object(
  {
    listen: Type.String({ default: '0.0.0.0', description: 'Address the HTTP server binds (boot scripts, API, metrics).' }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 8080 }),
    publicUrl: Type.Optional(
      Type.String({
        pattern: '^https?://[^\\s/$#\\\\;|&]+$',
        description:
          'Base URL iPXE clients use to reach this server, e.g. http://192.0.2.1:8080. Default: taken from the Host header of each request.',
      }),
    ),
    bodyLimitBytes: Type.Integer({ minimum: 1024, maximum: 16 * 1024 * 1024, default: 1024 * 1024 }),
  },
  { additionalProperties: false, default: {} },
);

export const ApiConfig = Type.Object(
  {
    token: Type.Optional(Type.String({ minLength: 16, description: 'Bearer token for the REST API. Prefer tokenFile.' })),
    tokenFile: Type.Optional(
      Type.String({ description: 'File holding the bearer token (0600). Default: <stateDir>/api-token, created on first start.' }),
    ),
  },
  { additionalProperties: false, default: {} },
);

export const BootConfig = Type.Object(
  {
    templatesDir: Type.Optional(Type.String({ description: 'Folder of *.ipxe.hbs templates. Default: the boot-templates/ shipped with hiveboot.' })),
    discovery: Type.Boolean({ default: true, description: 'Record unknown machines as discovered hosts.' }),
    maxDiscovered: Type.Integer({ minimum: 0, default: 1000, description: 'Stop recording new unknown machines past this many discovered hosts.' }),
    autoEnroll: Type.Boolean({ default: false, description: 'Unknown machines are registered with defaultProfile straight away.' }),
    defaultProfile: Type.String({ default: 'default', description: 'Profile for auto-enrolled and approved hosts that name none.' }),
    retrySeconds: Type.Integer({ minimum: 1, maximum: 3600, default: 10, description: 'How long a waiting machine sleeps before asking again.' }),
    initiatorIqnPrefix: Type.String({
      default: 'iqn.2026-01.io.hiveboot',
      description: 'A host without its own initiator IQN gets <prefix>:<hostname>.',
    }),
    bindScripts: Type.Boolean({
      default: true,
      description:
        "serve a host's boot script (it carries the disk's CHAP secret) only to a caller whose address is that MAC on our link (DHCP lease or neighbour table); off for hosts behind a router",
    }),
  },
  { additionalProperties: false, default: {} },
);

export const InventoryConfig = Type.Object(
  {
    path: Type.Optional(Type.String({ description: 'SQLite database file. Default: <stateDir>/hiveboot.db.' })),
    eventRetentionDays: Type.Integer({ minimum: 1, default: 90 }),
  },
  { additionalProperties: false, default: {} },
);

export const DhcpSubnetConfig = Type.Object(
  {
    network: Type.String({ description: 'CIDR, e.g. 10.99.0.0/24; requests from this network (or relayed from it) are served' }),
    range: Type.Optional(
      Type.Object(
        { start: Type.String(), end: Type.String() },
        { additionalProperties: false, description: 'dynamic addresses for machines without a reservation (discovery); none: only reserved hosts get addresses' },
      ),
    ),
    router: Type.Optional(Type.String()),
    dnsServers: Type.Array(Type.String(), { default: [] }),
    domain: Type.Optional(Type.String()),
    leaseSeconds: Type.Integer({ minimum: 60, maximum: 31_536_000, default: 3600 }),
  },
  { additionalProperties: false },
);

export const DhcpConfig = Type.Object(
  {
    mode: Type.Union([Type.Literal('proxy'), Type.Literal('full'), Type.Literal('off')], {
      default: 'proxy',
      description: 'proxy: beside an existing DHCP server, boot information only; full: addresses too (isolated boot network); off: TFTP/HTTP only',
    }),
    interfaces: Type.Array(Type.String(), {
      default: [],
      description: 'interfaces to answer on; nothing is answered on any other (empty: DHCP is not served)',
    }),
    bootFiles: Type.Record(Type.String(), Type.String(), {
      default: {},
      description: 'client architecture (option 93, decimal) → boot file or URL, over the defaults; "{http}" is our HTTP base URL',
    }),
    subnets: Type.Array(DhcpSubnetConfig, { default: [], description: 'full mode: the networks served' }),
    ports: Type.Object(
      {
        server: Type.Integer({ minimum: 1, maximum: 65535, default: 67 }),
        pxe: Type.Integer({ minimum: 0, maximum: 65535, default: 4011, description: '0: do not listen for PXE boot server requests' }),
        client: Type.Integer({ minimum: 1, maximum: 65535, default: 68 }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false, default: {} },
);

export const TftpConfig = Type.Object(
  {
    enabled: Type.Boolean({ default: true }),
    listen: Type.String({ default: '0.0.0.0', description: 'address to serve TFTP on; on a multi-homed gateway, the boot network address' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 69, description: '0 picks a free port (tests)' }),
    root: Type.Optional(Type.String({ description: 'directory served read-only; default: the netboot/ shipped with hiveboot' })),
    maxTransfers: Type.Integer({ minimum: 1, maximum: 10_000, default: 64 }),
    timeoutMs: Type.Integer({ minimum: 50, maximum: 60_000, default: 1000, description: 'first retransmission timeout, doubled on each retry' }),
    retries: Type.Integer({ minimum: 1, maximum: 20, default: 5 }),
  },
  { additionalProperties: false, default: {} },
);

export const IscsiConfig = Type.Object(
  {
    enabled: Type.Boolean({ default: true, description: 'Serve hosts\' disks with the built-in iSCSI target (storage.backend builtin).' }),
    listen: Type.String({ default: '0.0.0.0', description: 'address the iSCSI portal binds' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 3260, description: '0 picks a free port (tests)' }),
    portals: Type.Array(Type.String(), {
      default: [],
      description:
        'portals announced to hosts (boot scripts, SendTargets), "ip" or "ip:port"; default: the listen address, or the address of http.publicUrl when listening on 0.0.0.0',
    }),
    targetIqnPrefix: Type.String({
      default: 'iqn.2026-01.io.hiveboot',
      description: 'targets are named <prefix>:<hostname>; use iqn.<yyyy-mm>.<your reversed domain>',
    }),
    discoveryNeedsChap: Type.Boolean({ default: true, description: 'SendTargets discovery only with a host\'s CHAP credentials' }),
    nopIntervalSeconds: Type.Integer({ minimum: 0, maximum: 3600, default: 10, description: 'ping idle initiators after this long (0: never)' }),
    nopTimeoutSeconds: Type.Integer({ minimum: 1, maximum: 3600, default: 30, description: 'drop a connection silent this long after a ping' }),
  },
  { additionalProperties: false, default: {} },
);

export const StorageConfig = Type.Object(
  {
    backend: Type.Union([Type.Literal('builtin'), Type.Literal('ceph-iscsi'), Type.Literal('none')], {
      default: 'builtin',
      description:
        'builtin: hiveboot makes each host a copy-on-write disk over its profile image and serves it; ceph-iscsi: each host gets an RBD clone of its profile image (rbd:pool/image@snapshot) exported by existing Ceph iSCSI gateways, driven through rbd-target-api (section cephIscsi); none: disks are entered by hand',
    }),
    dir: Type.Optional(Type.String({ description: 'where per-host overlays live. Default: <stateDir>/disks' })),
    mutualChap: Type.Boolean({ default: false, description: 'also give each host a target secret (the host checks the target)' }),
  },
  { additionalProperties: false, default: {} },
);

export const CephIscsiConfig = Type.Object(
  {
    apiUrls: Type.Array(Type.String({ pattern: '^https?://[^\\s/@?#]+(/api)?/?$' }), {
      minItems: 1,
      description:
        'rbd-target-api base URLs, e.g. http://gw1.example.net:5000, tried in this order (the next only when one cannot be reached): the API on any gateway configures them all',
    }),
    user: Type.String({ minLength: 1, default: 'admin', description: 'api_user of /etc/ceph/iscsi-gateway.cfg' }),
    passwordFile: Type.String({ minLength: 1, description: 'file holding api_password of iscsi-gateway.cfg (mode 0600)' }),
    gateways: Type.Array(
      Type.Object(
        {
          name: Type.String({ minLength: 1, description: 'the gateway as rbd-target-api names it (its FQDN: GET /api/sysinfo/hostname)' }),
          ip: Type.String({ minLength: 1, description: 'the portal address hosts log in to on this gateway' }),
        },
        { additionalProperties: false },
      ),
      { minItems: 1, description: 'every gateway that exports hosts\' disks; each host\'s target gets a portal on each' },
    ),
    targetIqnPrefix: Type.Optional(Type.String({ description: 'targets are named <prefix>:<hostname>; default: iscsi.targetIqnPrefix' })),
    tls: Type.Object(
      {
        caFile: Type.Optional(Type.String({ description: 'PEM CA bundle that signed the gateways\' API certificates (https URLs)' })),
        insecure: Type.Boolean({ default: false, description: 'accept any certificate (ceph-iscsi\'s own api_ssl_verify default); prefer caFile' }),
      },
      { additionalProperties: false, default: {} },
    ),
    timeoutMs: Type.Integer({
      minimum: 100,
      maximum: 600_000,
      default: 30_000,
      description: 'per API request; gateway changes lock the cluster-wide config object and touch every gateway, so allow seconds',
    }),
  },
  { additionalProperties: false, description: 'storage.backend ceph-iscsi: the existing Ceph iSCSI gateways and their API' },
);

export const CephConfig = Type.Object(
  {
    conf: Type.String({ default: '/etc/ceph/ceph.conf', description: 'ceph.conf of the cluster holding RBD disks (monitor addresses)' }),
    client: Type.String({
      pattern: '^[^\\s]+$',
      default: 'client.hiveboot',
      description: "cephx user; needs only: mon 'profile rbd', osd 'profile rbd pool=<pool>', mgr 'profile rbd pool=<pool>'",
    }),
    keyring: Type.Optional(Type.String({ description: "keyring file with the user's key (0600); default: what ceph.conf names" })),
    pool: Type.String({ minLength: 1, default: 'hiveboot', description: 'RBD pool for golden images and hosts\' clones' }),
  },
  { additionalProperties: false, default: {}, description: 'The Ceph cluster for RBD-backed disks; nothing connects to it unless a disk or image uses RBD' },
);

export const K3sConfig = Type.Object(
  {
    serverUrl: Type.Optional(
      Type.String({ pattern: '^https://[^\\s/$#]+(:\\d+)?/?$', description: 'K3s server URL the agents join, e.g. https://10.0.0.10:6443' }),
    ),
    tokenFile: Type.Optional(Type.String({ description: 'file holding the K3s agent token (0600); given only to the host asking for its own config' })),
  },
  { additionalProperties: false, default: {} },
);

export const LogConfig = Type.Object({ level: LogLevel }, { additionalProperties: false, default: {} });

export const Config = Type.Object(
  {
    stateDir: Type.String({ default: '/var/lib/hiveboot', description: 'Database, API token and other state (0700).' }),
    http: HttpConfig,
    api: ApiConfig,
    boot: BootConfig,
    inventory: InventoryConfig,
    dhcp: DhcpConfig,
    tftp: TftpConfig,
    iscsi: IscsiConfig,
    storage: StorageConfig,
    cephIscsi: Type.Optional(CephIscsiConfig),
    ceph: CephConfig,
    k3s: K3sConfig,
    log: LogConfig,
  },
  { additionalProperties: false, default: {} },
);

export type Config = Static<typeof Config>;
