// The `ceph-iscsi` provisioner: a host whose profile names an RBD snapshot (rbd:pool/image@snap) gets
// a copy-on-write clone of it (through librbd: rbd-target-api has no clone call), exported by the
// existing Ceph iSCSI gateways on a target of its own — a portal on every gateway, the clone as LUN,
// an ACL for the host's initiator IQN with its own CHAP credentials — all driven through the
// gateways' REST API, ahead of the boot.
//
// Converging, not scripting: every run reads the gateways' config object first and asks only for
// what is missing or different, then reads it again to check, so a re-run makes no change and a run
// cut short is completed by the next. Teardown finds the host's parts by its image name (made from
// its MAC), so it works after the host's record is gone and tolerates parts already removed.

import { isIP } from 'node:net';
import type { Actor, Host } from '../../inventory/hosts.js';
import type { Inventory } from '../../inventory/index.js';
import { formatPortal, normalizeIqn } from '../../model/identifiers.js';
import type { DiskInput } from '../../model/schemas.js';
import { RotationError, type ReconcileResult } from '../builtin.js';
import { newChapPair, newChapSecret, type ChapPair } from '../credentials.js';
import { GatewayApiError, type GatewayApi, type GatewayChap, type GatewayConfig } from './api-client.js';
import { CephIscsiError, explainGatewayError } from './errors.js';
import { parseRbdSnapshot, rbdDiskName, type RbdImages, type RbdSnapshot } from './rbd.js';

export const CEPH_ISCSI_SOURCE = 'ceph-iscsi';

/** LIO on the gateways always listens on the iSCSI port; ceph-iscsi has no setting for another. */
const ISCSI_PORT = 3260;
const STORAGE: Actor = { stage: 'storage' };

export interface CephIscsiGateway {
  /** As rbd-target-api names it (socket.getfqdn() on the gateway). */
  name: string;
  /** The portal address hosts log in to. */
  ip: string;
}

export interface CephIscsiOptions {
  gateways: CephIscsiGateway[];
  targetIqnPrefix: string;
  initiatorIqnPrefix: string;
  mutualChap: boolean;
  /** The API user, named in the error when the gateways refuse the password. */
  apiUser: string;
}

/** What one host must have on the gateways. */
interface Wanted {
  targetIqn: string;
  clientIqn: string;
  /** "pool/image", as the gateways key disks. */
  disk: string;
  chap: ChapForm;
}

/** The CHAP fields as rbd-target-api takes them; empty strings mean none. */
interface ChapForm {
  username: string;
  password: string;
  mutual_username: string;
  mutual_password: string;
}

/** One piece of a host's export: whether the gateways have it, and the call that makes it. */
interface Part {
  what: string;
  holds(cfg: GatewayConfig): boolean;
  make(): Promise<unknown>;
}

export class CephIscsiProvisioner {
  private readonly queues = new SerialQueues();

  constructor(
    private readonly inventory: Inventory,
    private readonly api: GatewayApi,
    private readonly rbd: RbdImages,
    private readonly opts: CephIscsiOptions,
  ) {
    if (opts.gateways.length === 0) throw new Error('ceph-iscsi: no gateway given (cephIscsi.gateways)');
    for (const [i, g] of opts.gateways.entries()) {
      if (isIP(g.ip) === 0) throw new Error(`cephIscsi.gateways.${i}.ip: "${g.ip}" is not an IP address`);
      if (opts.gateways.findIndex((o) => o.name === g.name || o.ip === g.ip) !== i) {
        throw new Error(`cephIscsi.gateways.${i}: gateway ${g.name} (${g.ip}) is listed twice`);
      }
    }
    normalizeIqn(`${opts.targetIqnPrefix}:host`, 'cephIscsi.targetIqnPrefix');
  }

  /** The host's RBD image: named from its MAC, so that it outlives host name changes and the host record. */
  imageName(mac: string): string {
    return rbdDiskName(mac);
  }

  /** Portals announced to hosts: every gateway, on the iSCSI port. */
  portals(): string[] {
    return this.opts.gateways.map((g) => formatPortal({ host: g.ip, port: ISCSI_PORT }));
  }

  /**
   * Brings one host's export in line with the inventory: clones and exports a missing disk, completes
   * or corrects a partial one, withdraws the export of a removed or disabled host (its image stays).
   */
  reconcile(mac: string): Promise<ReconcileResult> {
    return this.queues.run(mac, () => this.explained(() => this.reconcileNow(mac)));
  }

  private async reconcileNow(mac: string): Promise<ReconcileResult> {
    const host = this.inventory.hosts.find(mac);
    if (host?.disk && host.disk.source !== CEPH_ISCSI_SOURCE) return 'not-ours';
    if (!host || host.state === 'disabled' || host.state === 'discovered') {
      // A discovered host without a disk was never exported: nothing to ask the gateways.
      if (!host || host.disk || host.state === 'disabled') await this.withdraw(mac, host, host ? `host is ${host.state}` : 'host removed');
      return 'withdrawn';
    }
    const golden = this.goldenOf(host);
    if (!golden || !host.hostname) return 'waiting';
    const cfg = await this.readConfig();
    const targetIqn = host.disk?.targetIqn ?? this.newTargetIqn(host.mac, host.hostname);
    const disk = this.diskOf(cfg, mac, targetIqn) ?? `${golden.pool}/${this.imageName(mac)}`;
    if (!cfg.disks[disk]) {
      // Made before any change on the gateways: they can only register an image that exists.
      await this.rbd.ensureClone({ pool: golden.pool, parent: golden.image, snapshot: golden.snapshot, child: this.imageName(mac) });
    }
    const chap = host.disk ? chapOfDisk(host.disk) : newChap(this.opts.mutualChap);
    const lun = await this.converge(mac, cfg, { targetIqn, clientIqn: this.initiatorOf(host), disk, chap: chapForm(chap) });
    const portals = this.portals();
    if (host.disk && host.disk.lun === lun && sameList(host.disk.portals, portals)) return 'published';
    this.inventory.hosts.attachDisk(mac, diskInput(portals, targetIqn, lun, chap), CEPH_ISCSI_SOURCE, STORAGE);
    return host.disk ? 'published' : 'provisioned';
  }

  /** A new CHAP secret (and mutual secret, if any): the gateways take it first, then the inventory. */
  rotateChap(mac: string): Promise<Host> {
    return this.queues.run(mac, () =>
      this.explained(async () => {
        const host = this.inventory.hosts.get(mac);
        const disk = host.disk;
        if (!disk || disk.source !== CEPH_ISCSI_SOURCE || !disk.chapUser) {
          throw new RotationError(`host ${mac} has no disk provisioned by hiveboot: its credentials are managed elsewhere`);
        }
        const chap: Chap = {
          user: disk.chapUser,
          secret: newChapSecret(),
          ...(disk.mutualUser ? { mutual: { user: disk.mutualUser, secret: newChapSecret() } } : {}),
        };
        const cfg = await this.readConfig();
        const golden = this.goldenOf(host);
        const key = this.diskOf(cfg, mac, disk.targetIqn) ?? (golden && `${golden.pool}/${this.imageName(mac)}`);
        if (!key) throw new CephIscsiError(`host ${mac}: its disk is on no gateway and its profile names no RBD image to find it by`, 'inconsistent');
        const lun = await this.converge(mac, cfg, { targetIqn: disk.targetIqn, clientIqn: this.initiatorOf(host), disk: key, chap: chapForm(chap) });
        return this.inventory.hosts.attachDisk(mac, diskInput(this.portals(), disk.targetIqn, lun, chap), CEPH_ISCSI_SOURCE, STORAGE);
      }),
    );
  }

  /** After a host is removed: its export goes from the gateways; its RBD image only when asked. */
  release(mac: string, opts: { deleteData: boolean }): Promise<void> {
    return this.queues.run(mac, () =>
      this.explained(async () => {
        const { pools } = await this.withdraw(mac, undefined, 'host removed');
        if (!opts.deleteData) return;
        // The image is in the pool the gateways had it in; when they no longer list it, in a golden's pool.
        for (const image of this.inventory.images.list()) {
          if (image.location.startsWith('rbd:')) pools.add(image.location.slice(4).split('/')[0]!);
        }
        for (const pool of pools) await this.rbd.remove(pool, this.imageName(mac));
      }),
    );
  }

  /** Reconciles every host that is or may become ours (daemon start). Failures are per host: the rest go on. */
  async publishAll(onError: (mac: string, err: unknown) => void): Promise<number> {
    let published = 0;
    for (const host of this.inventory.hosts.list()) {
      if (host.disk && host.disk.source !== CEPH_ISCSI_SOURCE) continue;
      try {
        const r = await this.reconcile(host.mac);
        if (r === 'published' || r === 'provisioned') published++;
      } catch (err) {
        onError(host.mac, err);
      }
    }
    return published;
  }

  /**
   * Makes the gateways hold `w`, part by part in the order the API needs (target, portals, disk,
   * target LUN, client, CHAP, client LUN), skipping what `cfg` already shows; then reads the config
   * again and checks. Returns the LUN the host sees its disk as.
   */
  private async converge(mac: string, cfg: GatewayConfig, w: Wanted): Promise<number> {
    const parts = await this.partsOf(cfg, w);
    const made: string[] = [];
    try {
      for (const part of parts) {
        if (part.holds(cfg)) continue;
        await part.make();
        made.push(part.what);
      }
    } finally {
      // Also when a step fails: the timeline shows how far the run got.
      if (made.length > 0) {
        this.inventory.events.record({
          mac,
          stage: 'storage',
          message: `ceph-iscsi gateways: ${made.join('; ')}`,
          reason: `target ${w.targetIqn} exports ${w.disk} to ${w.clientIqn}`,
        });
      }
    }
    if (made.length > 0) {
      cfg = await this.readConfig();
      const missing = parts.filter((p) => !p.holds(cfg)).map((p) => p.what);
      if (missing.length > 0) {
        throw new CephIscsiError(`the gateways answered success but their config still lacks: ${missing.join('; ')}`, 'inconsistent');
      }
    }
    return cfg.targets[w.targetIqn]!.clients[w.clientIqn]!.luns[w.disk]!.lun_id;
  }

  private async partsOf(cfg: GatewayConfig, w: Wanted): Promise<Part[]> {
    const T = w.targetIqn;
    const C = w.clientIqn;
    const D = w.disk;
    const [pool, image] = D.split('/') as [string, string];
    const target = (c: GatewayConfig) => c.targets[T];
    const client = (c: GatewayConfig) => target(c)?.clients[C];
    const current = target(cfg);

    for (const g of this.opts.gateways) {
      const portal = current?.portals[g.name];
      if (portal && !portal.portal_ip_addresses.includes(g.ip)) {
        throw new CephIscsiError(
          `gateway ${g.name} is a portal of ${T} on ${portal.portal_ip_addresses.join(', ') || 'no address'}, not on ${g.ip} as cephIscsi.gateways says: correct the config, or delete that portal (gwcli) for it to be made again`,
          'gateway-config',
        );
      }
    }
    let gateways = this.opts.gateways;
    if (Object.keys(current?.portals ?? {}).length === 0) {
      // rbd-target-api makes a target's first portal on the gateway it runs on, whatever name is asked
      // for: that gateway goes first.
      const local = await this.localGateway();
      gateways = [local, ...gateways.filter((g) => g !== local)];
    }

    const parts: Part[] = [
      { what: `target ${T} created`, holds: (c) => target(c) !== undefined, make: () => this.api.put(['target', T]) },
      ...gateways.map(
        (g): Part => ({
          what: `portal on ${g.name} (${g.ip})`,
          holds: (c) => target(c)?.portals[g.name] !== undefined,
          make: () => this.api.put(['gateway', T, g.name], { ip_address: g.ip }),
        }),
      ),
      {
        what: 'ACL enforced',
        holds: (c) => target(c)?.acl_enabled !== false,
        make: () => this.api.put(['targetauth', T], { action: 'enable_acl' }),
      },
      {
        what: `disk ${D} registered`,
        holds: (c) => c.disks[D] !== undefined,
        make: () => this.api.put(['disk', pool, image], { mode: 'create', create_image: 'false' }),
      },
      { what: `disk ${D} exported as a LUN`, holds: (c) => target(c)?.disks[D] !== undefined, make: () => this.api.put(['targetlun', T], { disk: D }) },
      // The target is the host's own: an initiator it no longer has (its IQN changed) loses access.
      ...Object.keys(current?.clients ?? {})
        .filter((other) => other !== C)
        .map(
          (other): Part => ({
            what: `old initiator ${other} removed`,
            holds: (c) => target(c)?.clients[other] === undefined,
            make: () => this.api.delete(['client', T, other]),
          }),
        ),
      { what: `initiator ${C} allowed`, holds: (c) => client(c) !== undefined, make: () => this.api.put(['client', T, C]) },
      {
        what: current?.clients[C]?.auth.username ? 'CHAP credentials changed' : 'CHAP credentials set',
        holds: (c) => sameChap(client(c)?.auth, w.chap),
        make: () => this.api.put(['clientauth', T, C], { ...w.chap }),
      },
      { what: `disk mapped to ${C}`, holds: (c) => client(c)?.luns[D] !== undefined, make: () => this.api.put(['clientlun', T, C], { disk: D }) },
    ];
    return parts;
  }

  /**
   * Removes the host's export, found by its image name: the image's LUN from every client that maps
   * it (and the client once it maps nothing else), the LUN from its target, the disk from the
   * gateways' config (the RBD image stays), and the target once empty. Parts already gone are skipped.
   */
  private async withdraw(mac: string, host: Host | undefined, reason: string): Promise<{ pools: Set<string> }> {
    const cfg = await this.readConfig();
    const image = this.imageName(mac);
    const ours = (key: string) => key.split('/')[1] === image;
    const disks = new Set(Object.keys(cfg.disks).filter(ours));
    const targets = new Set<string>();
    if (host?.disk?.source === CEPH_ISCSI_SOURCE && cfg.targets[host.disk.targetIqn]) targets.add(host.disk.targetIqn);
    const done: string[] = [];
    const remove = async (what: string, path: string[], form: Record<string, string>, gone: string[]) => {
      try {
        await this.api.delete(path, form);
        done.push(what);
      } catch (err) {
        if (!isGone(err, gone)) throw err;
      }
    };

    // A disk is not pulled from under a running host: refuse before changing anything.
    for (const [T, target] of Object.entries(cfg.targets)) {
      for (const [C, client] of Object.entries(target.clients)) {
        if (!Object.keys(client.luns).some(ours)) continue;
        const info = await this.api.get<{ state?: Record<string, string[]> }>(['clientinfo', T, C]);
        const on = info.state?.LOGGED_IN ?? [];
        if (on.length > 0) {
          throw new CephIscsiError(
            `initiator ${C} is logged in to ${T} (on ${on.join(', ')}): its disk is not taken from a running host; power the host off first`,
            'client-logged-in',
          );
        }
      }
    }
    for (const [T, target] of Object.entries(cfg.targets)) {
      const lunsHere = Object.keys(target.disks).filter(ours);
      for (const [C, client] of Object.entries(target.clients)) {
        const mapped = Object.keys(client.luns).filter(ours);
        if (mapped.length === 0) continue;
        targets.add(T);
        for (const D of mapped) await remove(`disk ${D} unmapped from ${C}`, ['clientlun', T, C], { disk: D }, ['disk not mapped to client', C]);
        if (Object.keys(client.luns).every(ours)) await remove(`initiator ${C} removed`, ['client', T, C], {}, ['is not defined yet', C]);
      }
      for (const D of lunsHere) {
        targets.add(T);
        disks.add(D);
        await remove(`LUN ${D} removed from ${T}`, ['targetlun', T], { disk: D }, ['is not defined in', T]);
      }
    }
    for (const D of disks) {
      if (!cfg.disks[D]) continue;
      const [pool, img] = D.split('/') as [string, string];
      await remove(`disk ${D} deregistered (image kept)`, ['disk', pool, img], { preserve_image: 'true' }, [D]);
    }
    for (const T of targets) {
      const target = cfg.targets[T]!;
      const othersDisks = Object.keys(target.disks).filter((d) => !ours(d));
      const othersClients = Object.entries(target.clients).filter(([, c]) => !Object.keys(c.luns).every(ours));
      if (othersDisks.length === 0 && othersClients.length === 0) await remove(`target ${T} deleted`, ['target', T], {}, [T]);
    }
    if (done.length > 0) {
      this.inventory.events.record({ mac, stage: 'storage', message: `ceph-iscsi gateways: ${done.join('; ')}`, reason });
    }
    return { pools: new Set([...disks].map((d) => d.split('/')[0]!)) };
  }

  /**
   * <prefix>:<hostname>, unless another host's disk already uses that target (it was provisioned
   * under this name, then renamed): a target is one host's, so this one gets its MAC added.
   */
  private newTargetIqn(mac: string, hostname: string): string {
    const iqn = normalizeIqn(`${this.opts.targetIqnPrefix}:${hostname}`, 'cephIscsi.targetIqnPrefix');
    const taken = this.inventory.hosts.list().some((h) => h.mac !== mac && h.disk?.targetIqn === iqn);
    return taken ? `${iqn}-${mac.replace(/:/g, '')}` : iqn;
  }

  /** The configured gateway whose rbd-target-api answers calls. */
  private async localGateway(): Promise<CephIscsiGateway> {
    const { data } = await this.api.get<{ data: string }>(['sysinfo', 'hostname']);
    const local = this.opts.gateways.find((g) => g.name === data);
    if (!local) {
      throw new CephIscsiError(
        `the rbd-target-api at ${this.api.currentUrl} runs on "${data}", which cephIscsi.gateways does not list: a target's first portal is always made on the gateway whose API is called, so list that gateway (by this name) or call the API of one that is listed`,
        'not-a-gateway',
      );
    }
    return local;
  }

  /** The gateways' config object, CHAP passwords decrypted (to compare them with the host's). */
  private async readConfig(): Promise<GatewayConfig> {
    const cfg = await this.api.get<GatewayConfig>(['config'], { decrypt_passwords: 'true' });
    if (!cfg || typeof cfg !== 'object' || typeof cfg.targets !== 'object' || typeof cfg.disks !== 'object') {
      throw new CephIscsiError(`GET /api/config on ${this.api.currentUrl} did not return a ceph-iscsi config object`, 'inconsistent');
    }
    return cfg;
  }

  /** The host's disk as the gateways know it: on its target, else registered anywhere. */
  private diskOf(cfg: GatewayConfig, mac: string, targetIqn: string): string | undefined {
    const image = this.imageName(mac);
    const ours = (key: string) => key.split('/')[1] === image;
    return Object.keys(cfg.targets[targetIqn]?.disks ?? {}).find(ours) ?? Object.keys(cfg.disks).find(ours);
  }

  private initiatorOf(host: Host): string {
    return host.initiatorIqn ?? normalizeIqn(`${this.opts.initiatorIqnPrefix}:${host.hostname}`, 'boot.initiatorIqnPrefix');
  }

  private goldenOf(host: Host): RbdSnapshot | undefined {
    if (!host.profile) return undefined;
    const profile = this.inventory.profiles.find(host.profile);
    if (!profile?.image) return undefined;
    const image = this.inventory.images.find(profile.image);
    return image && parseRbdSnapshot(image.location, image.name);
  }

  /** Runs work, turning the API's refusals into errors that say what to do. */
  private async explained<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      throw explainGatewayError(err, { user: this.opts.apiUser, gatewayCount: this.opts.gateways.length });
    }
  }

  close(): void {
    this.api.close();
  }
}

interface Chap extends ChapPair {
  mutual?: ChapPair;
}

function newChap(mutual: boolean): Chap {
  return { ...newChapPair(), ...(mutual ? { mutual: newChapPair() } : {}) };
}

function chapOfDisk(disk: NonNullable<Host['disk']>): Chap {
  return {
    user: disk.chapUser ?? '',
    secret: disk.chapSecret ?? '',
    ...(disk.mutualUser && disk.mutualSecret ? { mutual: { user: disk.mutualUser, secret: disk.mutualSecret } } : {}),
  };
}

/** The inventory's record of the disk: what the host's boot script tells it. */
function diskInput(portals: string[], targetIqn: string, lun: number, chap: Chap): DiskInput {
  return {
    portals,
    targetIqn,
    lun,
    chapUser: chap.user,
    chapSecret: chap.secret,
    ...(chap.mutual ? { mutualUser: chap.mutual.user, mutualSecret: chap.mutual.secret } : {}),
  };
}

function chapForm(chap: Chap): ChapForm {
  return {
    username: chap.user,
    password: chap.secret,
    mutual_username: chap.mutual?.user ?? '',
    mutual_password: chap.mutual?.secret ?? '',
  };
}

function sameChap(current: GatewayChap | undefined, wanted: ChapForm): boolean {
  return (
    current !== undefined &&
    current.username === wanted.username &&
    current.password === wanted.password &&
    current.mutual_username === wanted.mutual_username &&
    current.mutual_password === wanted.mutual_password
  );
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** A refused delete whose message says the thing is already gone (another run, or an operator, removed it). */
function isGone(err: unknown, signs: string[]): boolean {
  if (!(err instanceof GatewayApiError) || err.status === undefined || err.status === 401 || err.status === 403 || err.status === 503) return false;
  const m = err.gatewayMessage;
  // A KeyError on the missing thing surfaces as "Unhandled exception: '<key>'".
  return signs.some((s) => (s.includes(' ') ? m.includes(s) : m.endsWith(`Unhandled exception: '${s}'`)));
}

/** One chain of work per key: two calls for one host never interleave; different hosts run side by side. */
class SerialQueues {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const result = (this.tails.get(key) ?? Promise.resolve()).then(work, work);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}
