import { CephError, check } from './errors.js';
import { callAsync, loadCeph } from './native.js';
import { CephPool } from './pool.js';

/** How to reach a cluster, as hiveboot's config says it (the `ceph` section). */
export interface CephSettings {
  /** ceph.conf to read (monitor addresses and the like). Default /etc/ceph/ceph.conf. */
  conf?: string;
  /** The cephx user: 'client.hiveboot' or just 'hiveboot'. Default client.hiveboot. */
  client?: string;
  /** Keyring with the user's key. Default: what ceph.conf says (keyring = …) or Ceph's default places. */
  keyring?: string;
  /**
   * Seconds to wait for the monitors: connecting (a dead cluster or unreachable monitor fails after
   * this long) and monitor commands such as looking up a pool. Default 10.
   */
  timeoutSeconds?: number;
  /**
   * Seconds an OSD operation (I/O included) may take before it fails with ETIMEDOUT. Default 0: wait
   * for the cluster to come back, as librbd and the kernel's rbd do; a LUN then stalls rather than fails.
   */
  osdTimeoutSeconds?: number;
  /** Further Ceph options (name → value), applied last. */
  options?: Record<string, string>;
}

export const DEFAULT_CEPH_CONF = '/etc/ceph/ceph.conf';
export const DEFAULT_CEPH_CLIENT = 'client.hiveboot';
const DEFAULT_TIMEOUT_SECONDS = 10;

/**
 * Options set on every connection, before the caller's `options`:
 * - rbd_cache off: a write librbd acknowledges is then on the OSDs, so what hiveboot acknowledged to
 *   an initiator survives hiveboot being killed (the file backend's page cache guarantee, and
 *   stronger), and no second copy of hot data sits in hiveboot's memory (the initiator caches).
 * - librados' own messages stay off stderr: failures reach the caller as CephErrors instead.
 */
const BASE_OPTIONS: Record<string, string> = {
  rbd_cache: 'false',
  log_to_stderr: 'false',
  err_to_stderr: 'false',
};

function clientName(client: string | undefined): string {
  const name = client ?? DEFAULT_CEPH_CLIENT;
  return name.includes('.') ? name : `client.${name}`;
}

/** A connection to one cluster as one cephx user, and the pools opened through it. */
export class CephCluster {
  private readonly pools = new Map<string, Promise<CephPool>>();
  private closed: Promise<void> | undefined;

  private constructor(
    /** The rados_t handle. */
    readonly handle: unknown,
    readonly client: string,
    readonly conf: string,
  ) {}

  /**
   * Connects (on a worker thread: it waits on the network). Errors name what is wrong: the config
   * file, the keyring, the key, the monitors.
   */
  static async connect(settings: CephSettings = {}): Promise<CephCluster> {
    const lib = loadCeph();
    const client = clientName(settings.client);
    const conf = settings.conf ?? DEFAULT_CEPH_CONF;
    const timeout = String(settings.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS);
    const who = `Ceph cluster of ${conf} as ${client}`;
    const slot = [null as unknown];
    check(lib.rados_create2(slot, 'ceph', client, 0), 'rados_create2', who);
    const handle = slot[0];
    try {
      check(lib.rados_conf_read_file(handle, conf), 'rados_conf_read_file', `Ceph config ${conf}`, {
        ENOENT: 'no such file',
        EACCES: 'not readable by this user',
        EINVAL: 'not a valid Ceph config file',
      });
      const options: Record<string, string> = {
        ...BASE_OPTIONS,
        client_mount_timeout: timeout,
        rados_mon_op_timeout: timeout,
        rados_osd_op_timeout: String(settings.osdTimeoutSeconds ?? 0),
        ...(settings.keyring ? { keyring: settings.keyring } : {}),
        ...settings.options,
      };
      for (const [name, value] of Object.entries(options)) {
        check(lib.rados_conf_set(handle, name, value), 'rados_conf_set', `Ceph option ${name}=${value}`, {
          ENOENT: 'no such option in this Ceph version',
          EINVAL: 'invalid value',
        });
      }
      const keyring = settings.keyring ?? readOption(handle, 'keyring');
      const rc = await callAsync(lib.rados_connect, handle);
      check(rc, 'rados_connect', who, {
        ENOENT: `no key for ${client} (keyring: ${keyring ?? 'none configured'})`,
        EACCES: `cephx refused ${client}: wrong key in ${keyring ?? 'its keyring'}, or no such user`,
        EPERM: `cephx refused ${client}: wrong key in ${keyring ?? 'its keyring'}, or no such user`,
        ETIMEDOUT: `no answer from the monitors (${readOption(handle, 'mon_host') || 'mon host not set'}) within ${timeout} s`,
        EINVAL: `cannot connect: check mon host and the keyring (${keyring ?? 'none configured'}) in ${conf}`,
      });
    } catch (err) {
      lib.rados_shutdown(handle); // not connected: nothing to wait for
      throw err;
    }
    return new CephCluster(handle, client, conf);
  }

  /** This connection's id as the cluster sees it (client.<id> in lock owners and `ceph` output). */
  get instanceId(): number {
    return Number(loadCeph().rados_get_instance_id(this.handle));
  }

  /**
   * The pool (io context) `name`, opened once per connection. A missing pool is a CephError ENOENT
   * naming it.
   */
  pool(name: string): Promise<CephPool> {
    if (this.closed) return Promise.reject(new CephError('ESHUTDOWN', 108, 'rados_ioctx_create', `${this.describe()} is shut down`));
    let opened = this.pools.get(name);
    if (!opened) {
      opened = CephPool.open(this, name);
      this.pools.set(name, opened);
      opened.catch(() => this.pools.delete(name));
    }
    return opened;
  }

  describe(): string {
    return `Ceph cluster of ${this.conf} as ${this.client}`;
  }

  /** Closes the pools' io contexts and the connection. Images must be closed first. */
  shutdown(): Promise<void> {
    this.closed ??= (async () => {
      for (const opened of this.pools.values()) {
        const pool = await opened.catch(() => undefined);
        pool?.destroy();
      }
      this.pools.clear();
      await callAsync(loadCeph().rados_shutdown, this.handle);
    })();
    return this.closed;
  }
}

/** A config value as librados resolved it (after the file and our settings), or undefined. */
function readOption(handle: unknown, name: string): string | undefined {
  const buf = Buffer.alloc(4096);
  if (Number(loadCeph().rados_conf_get(handle, name, buf, buf.length)) < 0) return undefined;
  const value = buf.subarray(0, buf.indexOf(0)).toString();
  return value === '' ? undefined : value;
}

// ---- one connection per cluster config, shared ----------------------------------------------------

interface Shared {
  connecting: Promise<CephCluster>;
  users: number;
}

const shared = new Map<string, Shared>();

/** A use of a shared connection; release() when done (the last release shuts it down). */
export interface ClusterLease {
  readonly cluster: CephCluster;
  release(): Promise<void>;
}

function keyOf(settings: CephSettings): string {
  return JSON.stringify([
    settings.conf ?? DEFAULT_CEPH_CONF,
    clientName(settings.client),
    settings.keyring ?? null,
    settings.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS,
    settings.osdTimeoutSeconds ?? 0,
    Object.entries(settings.options ?? {}).sort(([a], [b]) => a.localeCompare(b)),
  ]);
}

/**
 * The connection for these settings, shared by every user in the process (every LUN, the
 * provisioners): one set of monitor and OSD sessions, one set of librados threads. A failed connect
 * is not kept: the next call tries again.
 */
export async function acquireCluster(settings: CephSettings = {}): Promise<ClusterLease> {
  const key = keyOf(settings);
  let entry = shared.get(key);
  if (!entry) {
    const created: Shared = { connecting: CephCluster.connect(settings), users: 0 };
    shared.set(key, created);
    created.connecting.catch(() => {
      if (shared.get(key) === created) shared.delete(key);
    });
    entry = created;
  }
  entry.users++;
  let cluster: CephCluster;
  try {
    cluster = await entry.connecting;
  } catch (err) {
    entry.users--;
    throw err;
  }
  const owner = entry;
  let released = false;
  return {
    cluster,
    async release() {
      if (released) return;
      released = true;
      if (--owner.users > 0) return;
      if (shared.get(key) === owner) shared.delete(key);
      await cluster.shutdown();
    },
  };
}

/** Connections currently shared (tests). */
export function sharedClusterCount(): number {
  return shared.size;
}
