import { ConflictError, NotFoundError, ValidationError } from '../model/errors.js';
import {
  formatPortal,
  normalizeHostname,
  normalizeIpv4,
  normalizeIqn,
  normalizeMac,
  parsePortal,
  validateChapSecret,
  validateChapUser,
  validateBootFile,
  validateLabels,
  validateName,
} from '../model/identifiers.js';
import type { DiskInput, Facts, HostCreate, HostState, HostUpdate, HostView } from '../model/schemas.js';
import { statement, type Db } from './database.js';
import type { EventLog } from './events.js';
import { HostIndex, type HostBrief } from './host-index.js';
import { missingForBoot, nextState } from './host-state.js';
import { parseJsonMap, translateConstraint } from './sqlite-errors.js';

/** A host's disk with its secrets: only the boot policy and provisioners see this shape. */
export interface Disk {
  source: string;
  portals: string[];
  targetIqn: string;
  lun: number;
  chapUser: string | null;
  chapSecret: string | null;
  mutualUser: string | null;
  mutualSecret: string | null;
  updatedAt: string;
}

export interface Host {
  id: number;
  mac: string;
  hostname: string | null;
  profile: string | null;
  state: HostState;
  labels: Record<string, string>;
  facts: Record<string, string>;
  initiatorIqn: string | null;
  /** Reserved address in full-DHCP mode. */
  ip: string | null;
  bootFile: string | null;
  lastIp: string | null;
  lastSeenAt: string | null;
  disk: Disk | null;
  createdAt: string;
  updatedAt: string;
}

/** Who asked for a change: written on the host's timeline with it. */
export interface Actor {
  stage: string;
  sourceIp?: string | null;
}

const API: Actor = { stage: 'api' };

const SELECT = `SELECT h.*, d.source AS d_source, d.portals AS d_portals, d.target_iqn AS d_target_iqn, d.lun AS d_lun,
  d.chap_user AS d_chap_user, d.chap_secret AS d_chap_secret, d.mutual_user AS d_mutual_user,
  d.mutual_secret AS d_mutual_secret, d.updated_at AS d_updated_at
  FROM hosts h LEFT JOIN disks d ON d.host_id = h.id`;

const BRIEF = 'SELECT mac, hostname, profile, state, ip, boot_file FROM hosts';
const BRIEF_ONE = `${BRIEF} WHERE mac = ?`;
/** How often the index asks whether another connection has written to the database. */
const VERSION_CHECK_MS = 1000;

interface BriefRow {
  mac: string;
  hostname: string | null;
  profile: string | null;
  state: HostState;
  ip: string | null;
  boot_file: string | null;
}

/**
 * Hosts and their disks. Every change is one transaction that also writes the host's event.
 *
 * Beside the table, every host is kept in memory (HostIndex: by MAC, by reserved address, counts by
 * state) for the questions asked on every DHCP packet. The index follows the database as this
 * connection sees it: a write to a host row marks its MAC stale (TEMP triggers, so no write can be
 * missed), and the next read of the index re-reads that row.
 * A row re-read inside a transaction is provisional until the transaction is known to have
 * committed; a rollback makes it stale again. Transactions that write hosts go through
 * transaction() (Inventory.transaction does), which is how their end is known.
 *
 * The daemon is the database's only writer. Should another connection commit to the same file (an
 * operator with the sqlite3 shell, a test opening it twice), PRAGMA data_version tells, and the
 * whole index is read again. That is asked at most once a second, not on every read: in WAL mode
 * every statement outside a transaction takes the shared-memory locks, syscalls the DHCP hot path
 * would otherwise pay for each packet.
 */
export class HostStore {
  private index: HostIndex | undefined;
  /** MACs whose index entry may differ from their row: re-read before the index is next used. */
  private readonly stale = new Set<string>();
  /** MACs re-read inside a transaction that has not ended yet. */
  private readonly provisional = new Set<string>();
  private dataVersion = -1;
  /** performance.now() of the last data_version check. */
  private versionCheckedAt = -Infinity;

  constructor(
    private readonly db: Db,
    private readonly events: EventLog,
    private readonly now: () => Date,
  ) {
    // Every write to a host row on this connection marks the row for re-reading, whichever method
    // (or bare statement) makes it: a method added later cannot forget to. TEMP triggers belong to
    // this connection alone and are not part of the schema.
    db.function('hiveboot_host_changed', (mac: unknown) => {
      if (typeof mac === 'string') this.stale.add(mac);
      return null;
    });
    db.exec(`
      CREATE TEMP TRIGGER IF NOT EXISTS hiveboot_host_inserted AFTER INSERT ON main.hosts
        BEGIN SELECT hiveboot_host_changed(NEW.mac); END;
      CREATE TEMP TRIGGER IF NOT EXISTS hiveboot_host_updated AFTER UPDATE OF mac, hostname, profile, state, ip, boot_file ON main.hosts
        BEGIN SELECT hiveboot_host_changed(OLD.mac), hiveboot_host_changed(NEW.mac); END;
      CREATE TEMP TRIGGER IF NOT EXISTS hiveboot_host_deleted AFTER DELETE ON main.hosts
        BEGIN SELECT hiveboot_host_changed(OLD.mac); END;
    `);
  }

  /**
   * Runs fn in one transaction (a savepoint inside another) and keeps the in-memory index in step
   * with how it ends. Every transaction that may write hosts goes through here.
   */
  transaction<T>(fn: () => T): T {
    // better-sqlite3's db.transaction() builds a new wrapper (five functions) on every call; this is
    // the same protocol — BEGIN IMMEDIATE or a savepoint, commit or roll back — on statements
    // prepared once, as it runs for every discovered machine.
    const nested = this.db.inTransaction;
    statement(this.db, nested ? 'SAVEPOINT host_store' : 'BEGIN IMMEDIATE').run();
    let result: T;
    try {
      result = fn();
      if (result instanceof Promise) throw new TypeError('Transaction function cannot return a promise');
      statement(this.db, nested ? 'RELEASE host_store' : 'COMMIT').run();
    } catch (err) {
      // SQLite may already have rolled back by itself (SQLITE_FULL, SQLITE_IOERR...).
      if (this.db.inTransaction) {
        if (nested) {
          statement(this.db, 'ROLLBACK TO host_store').run();
          statement(this.db, 'RELEASE host_store').run();
        } else {
          statement(this.db, 'ROLLBACK').run();
        }
      }
      // Rolled back, to the savepoint or entirely: what the index learnt inside may be undone.
      for (const mac of this.provisional) this.stale.add(mac);
      this.provisional.clear();
      throw err;
    }
    // Committed for good: the rows re-read inside are what is stored.
    if (!nested) this.provisional.clear();
    return result;
  }

  /** The host in memory: what DHCP needs, without a query. `mac` in canonical form, as find() takes it. */
  brief(mac: string): HostBrief | undefined {
    return this.current().get(mac);
  }

  /** The index, brought up to date with the database as this connection sees it now. */
  private current(): HostIndex {
    let index = this.index;
    const now = performance.now();
    if (!index || now - this.versionCheckedAt >= VERSION_CHECK_MS) {
      this.versionCheckedAt = now;
      const version = statement(this.db, 'PRAGMA data_version').pluck().get() as number;
      if (!index || version !== this.dataVersion) index = this.reload(version);
    }
    if (!this.db.inTransaction && this.provisional.size > 0) {
      // A transaction ended without telling us how (one opened outside this store): re-read.
      for (const mac of this.provisional) this.stale.add(mac);
      this.provisional.clear();
    }
    for (const mac of this.stale) {
      const row = statement(this.db, BRIEF_ONE).get(mac) as BriefRow | undefined;
      index.put(mac, row && toBrief(row));
      if (this.db.inTransaction) this.provisional.add(mac);
    }
    this.stale.clear();
    return index;
  }

  /** Reads every host again: on first use, or when another connection has committed. */
  private reload(version: number): HostIndex {
    const index = (this.index ??= new HostIndex());
    index.clear();
    for (const r of statement(this.db, BRIEF).all() as BriefRow[]) index.put(r.mac, toBrief(r));
    this.stale.clear();
    this.dataVersion = version;
    if (this.db.inTransaction) for (const mac of index.macs()) this.provisional.add(mac);
    else this.provisional.clear();
    return index;
  }

  list(filter: { state?: HostState; profile?: string } = {}): Host[] {
    const where: string[] = [];
    const args: string[] = [];
    if (filter.state) {
      where.push('h.state = ?');
      args.push(filter.state);
    }
    if (filter.profile) {
      where.push('h.profile = ?');
      args.push(filter.profile);
    }
    const sql = `${SELECT}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY h.hostname IS NULL, h.hostname, h.mac`;
    return (statement(this.db, sql).all(...args) as HostRow[]).map(toHost);
  }

  find(mac: string): Host | undefined {
    const row = statement(this.db, `${SELECT} WHERE h.mac = ?`).get(mac) as HostRow | undefined;
    return row && toHost(row);
  }

  /** The host last seen at this address (from DHCP or its boot requests), if any. */
  findByLastIp(ip: string): Host | undefined {
    const row = statement(this.db, `${SELECT} WHERE h.last_ip = ? ORDER BY h.last_seen_at DESC LIMIT 1`).get(ip) as HostRow | undefined;
    return row && toHost(row);
  }

  /** All address reservations, address → MAC: a live view from memory, to read before the next write. */
  reservations(): ReadonlyMap<string, string> {
    return this.current().reservations();
  }

  /** The MAC whose reserved address this is, if any (full-DHCP mode). */
  reservationOwner(ip: string): string | undefined {
    return this.current().reservationOwner(ip);
  }

  get(macInput: string): Host {
    const mac = normalizeMac(macInput);
    const host = this.find(mac);
    if (!host) throw new NotFoundError(`host ${mac} is not registered`, 'mac');
    return host;
  }

  countByState(): Record<HostState, number> {
    return this.current().countByState();
  }

  create(input: HostCreate, actor: Actor = API): Host {
    const mac = normalizeMac(input.mac);
    const hostname = input.hostname !== undefined ? normalizeHostname(input.hostname) : null;
    const profile = input.profile !== undefined ? validateName(input.profile, 'profile') : null;
    const labels = validateLabels(input.labels ?? {});
    const initiatorIqn = input.initiatorIqn !== undefined ? normalizeIqn(input.initiatorIqn, 'initiatorIqn') : null;
    const ip = input.ip !== undefined ? normalizeIpv4(input.ip) : null;
    const bootFile = input.bootFile !== undefined ? validateBootFile(input.bootFile) : null;
    const disk = input.disk ? cleanDisk(input.disk) : null;
    const at = this.now().toISOString();
    return this.transaction(() => {
      if (this.find(mac)) throw new ConflictError(`mac: ${mac} is already registered`, 'mac');
      this.checkHostnameFree(hostname, mac);
      this.checkIpFree(ip, mac);
      this.checkProfile(profile);
      const state = nextState(undefined, { hostname, profile, hasDisk: disk !== null }, input.state);
      let id: number;
      try {
        id = Number(
          this.db
            .prepare(
              `INSERT INTO hosts (mac, hostname, profile, state, labels, facts, initiator_iqn, ip, boot_file, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, '{}', ?, ?, ?, ?, ?)`,
            )
            .run(mac, hostname, profile, state, JSON.stringify(labels), initiatorIqn, ip, bootFile, at, at).lastInsertRowid,
        );
      } catch (err) {
        translateConstraint(err, { mac: 'mac', hostname: 'hostname', ip: 'ip' });
      }
      if (disk) this.writeDisk(id, disk, 'manual', at);
      this.events.record({
        mac,
        stage: actor.stage,
        sourceIp: actor.sourceIp,
        message: `registered${hostname ? ` as ${hostname}` : ''}${profile ? ` with profile ${profile}` : ''}: ${state}`,
        reason: describeState(state, { hostname, profile, hasDisk: disk !== null }),
      });
      return this.get(mac);
    });
  }

  update(macInput: string, patch: HostUpdate, actor: Actor = API): Host {
    const mac = normalizeMac(macInput);
    const hostname = patch.hostname !== undefined ? normalizeHostname(patch.hostname) : undefined;
    const profile = patch.profile === undefined ? undefined : patch.profile === null ? null : validateName(patch.profile, 'profile');
    const labels = patch.labels !== undefined ? validateLabels(patch.labels) : undefined;
    const initiatorIqn =
      patch.initiatorIqn === undefined ? undefined : patch.initiatorIqn === null ? null : normalizeIqn(patch.initiatorIqn, 'initiatorIqn');
    const ip = patch.ip === undefined ? undefined : patch.ip === null ? null : normalizeIpv4(patch.ip);
    const bootFile = patch.bootFile === undefined ? undefined : patch.bootFile === null ? null : validateBootFile(patch.bootFile);
    const disk = patch.disk === undefined ? undefined : patch.disk === null ? null : cleanDisk(patch.disk);
    return this.transaction(() => {
      const current = this.get(mac);
      if (hostname !== undefined) this.checkHostnameFree(hostname, mac);
      if (ip) this.checkIpFree(ip, mac);
      if (profile !== undefined) this.checkProfile(profile);
      const next = {
        hostname: hostname !== undefined ? hostname : current.hostname,
        profile: profile !== undefined ? profile : current.profile,
        hasDisk: disk !== undefined ? disk !== null : current.disk !== null,
      };
      const state = nextState(current.state, next, patch.state);
      const at = this.now().toISOString();
      this.db
        .prepare(
          `UPDATE hosts SET hostname = ?, profile = ?, state = ?, labels = ?, initiator_iqn = ?, ip = ?, boot_file = ?, updated_at = ? WHERE id = ?`,
        )
        .run(
          next.hostname,
          next.profile,
          state,
          JSON.stringify(labels ?? current.labels),
          initiatorIqn !== undefined ? initiatorIqn : current.initiatorIqn,
          ip !== undefined ? ip : current.ip,
          bootFile !== undefined ? bootFile : current.bootFile,
          at,
          current.id,
        );
      if (disk === null) statement(this.db, 'DELETE FROM disks WHERE host_id = ?').run(current.id);
      else if (disk) this.writeDisk(current.id, disk, 'manual', at);
      const changed = Object.keys(patch).filter((k) => (patch as Record<string, unknown>)[k] !== undefined);
      this.events.record({
        mac,
        stage: actor.stage,
        sourceIp: actor.sourceIp,
        message: `updated ${changed.join(', ')}${state !== current.state ? `; state ${current.state} → ${state}` : ''}`,
        reason: patch.state ? `state set to ${patch.state} by request` : describeState(state, next),
      });
      return this.get(mac);
    });
  }

  /**
   * Approves a discovered (or pending) host: it gets a host name (given, kept, or made from its MAC)
   * and a profile (given, kept, or the default), then is ready if it has a disk, else pending.
   */
  approve(macInput: string, opts: { hostname?: string; profile?: string; defaultProfile: string }, actor: Actor = API): Host {
    const mac = normalizeMac(macInput);
    const wantedHostname = opts.hostname !== undefined ? normalizeHostname(opts.hostname) : undefined;
    const wantedProfile = opts.profile !== undefined ? validateName(opts.profile, 'profile') : undefined;
    return this.transaction(() => {
      const current = this.get(mac);
      if (current.state === 'disabled') {
        throw new ConflictError(`state: host ${mac} is disabled; set its state explicitly to re-enable it`, 'state');
      }
      const hostname = wantedHostname ?? current.hostname ?? this.generateHostname(mac);
      const profile = wantedProfile ?? current.profile ?? opts.defaultProfile;
      this.checkHostnameFree(hostname, mac);
      if (!statement(this.db, 'SELECT 1 FROM profiles WHERE name = ?').get(profile)) {
        throw new ValidationError(
          `profile: "${profile}" does not exist${wantedProfile ? '' : ' (it is the default profile: create it or pass --profile)'}`,
          'profile',
        );
      }
      const c = { hostname, profile, hasDisk: current.disk !== null };
      const state: HostState = missingForBoot(c).length === 0 ? 'ready' : 'pending';
      this.db
        .prepare('UPDATE hosts SET hostname = ?, profile = ?, state = ?, updated_at = ? WHERE id = ?')
        .run(hostname, profile, state, this.now().toISOString(), current.id);
      this.events.record({
        mac,
        stage: actor.stage,
        sourceIp: actor.sourceIp,
        message: `approved as ${hostname} with profile ${profile}: ${current.state} → ${state}`,
        reason: describeState(state, c),
      });
      return this.get(mac);
    });
  }

  /**
   * Records a machine that reported itself. A new MAC becomes a discovered host (unless the cap on
   * discovered hosts is reached); a known one has its facts merged. Returns undefined when refused.
   */
  discover(
    macInput: string,
    facts: Facts,
    actor: Actor,
    limits: { maxDiscovered: number },
  ): { host: Host; created: boolean } | undefined {
    const mac = normalizeMac(macInput);
    const cleanFacts = cleanFactsMap(facts);
    return this.transaction(() => {
      const at = this.now().toISOString();
      const existing = this.find(mac);
      if (existing) {
        const merged = { ...existing.facts, ...cleanFacts };
        statement(this.db, 'UPDATE hosts SET facts = ?, last_ip = coalesce(?, last_ip), last_seen_at = ? WHERE id = ?').run(
          JSON.stringify(merged),
          actor.sourceIp ?? null,
          at,
          existing.id,
        );
        return { host: this.get(mac), created: false };
      }
      // Counted in memory: this runs for every new machine, and counting rows grows with the fleet.
      const discovered = this.current().count('discovered');
      if (discovered >= limits.maxDiscovered) {
        this.events.record({
          mac,
          stage: actor.stage,
          sourceIp: actor.sourceIp,
          message: 'not recorded as discovered',
          reason: `${discovered} discovered hosts already (boot.maxDiscovered): approve or remove some`,
        });
        return undefined;
      }
      statement(
        this.db,
        `INSERT INTO hosts (mac, state, facts, last_ip, last_seen_at, created_at, updated_at) VALUES (?, 'discovered', ?, ?, ?, ?, ?)`,
      ).run(mac, JSON.stringify(cleanFacts), actor.sourceIp ?? null, at, at, at);
      this.events.record({
        mac,
        stage: actor.stage,
        sourceIp: actor.sourceIp,
        message: `discovered${describeFacts(cleanFacts)}`,
        reason: 'unknown MAC and discovery is on: waiting for approval',
      });
      return { host: this.get(mac), created: true };
    });
  }

  /** Remembers where and when a machine was last seen (the IP its boot requests came from). */
  touch(mac: string, ip: string | null, facts?: Facts): void {
    const at = this.now().toISOString();
    if (facts && Object.keys(cleanFactsMap(facts)).length > 0) {
      this.transaction(() => {
        const h = this.find(mac);
        if (!h) return;
        this.db
          .prepare('UPDATE hosts SET facts = ?, last_ip = coalesce(?, last_ip), last_seen_at = ? WHERE id = ?')
          .run(JSON.stringify({ ...h.facts, ...cleanFactsMap(facts) }), ip, at, h.id);
      });
    } else {
      statement(this.db, 'UPDATE hosts SET last_ip = coalesce(?, last_ip), last_seen_at = ? WHERE mac = ?').run(ip, at, mac);
    }
  }

  /**
   * Gives a host the disk a provisioner made for it (source names the provisioner) and lets a pending
   * host become ready. The event names the target, never the credentials.
   */
  attachDisk(macInput: string, disk: DiskInput, source: string, actor: Actor): Host {
    const mac = normalizeMac(macInput);
    const clean = cleanDisk(disk);
    return this.transaction(() => {
      const current = this.get(mac);
      const at = this.now().toISOString();
      this.writeDisk(current.id, clean, source, at);
      const c = { hostname: current.hostname, profile: current.profile, hasDisk: true };
      const state = nextState(current.state, c);
      if (state !== current.state) statement(this.db, 'UPDATE hosts SET state = ?, updated_at = ? WHERE id = ?').run(state, at, current.id);
      this.events.record({
        mac,
        stage: actor.stage,
        sourceIp: actor.sourceIp,
        message: `disk ${current.disk ? 'updated' : 'provisioned'} by ${source}: ${clean.targetIqn} lun ${clean.lun}${state !== current.state ? `; state ${current.state} → ${state}` : ''}`,
        reason: describeState(state, c),
      });
      return this.get(mac);
    });
  }

  remove(macInput: string, actor: Actor = API): void {
    const mac = normalizeMac(macInput);
    this.transaction(() => {
      const h = this.get(mac);
      statement(this.db, 'DELETE FROM hosts WHERE id = ?').run(h.id);
      this.events.record({ mac, stage: actor.stage, sourceIp: actor.sourceIp, message: `removed${h.hostname ? ` (${h.hostname})` : ''}` });
    });
  }

  private writeDisk(hostId: number, d: CleanDisk, source: string, at: string): void {
    this.db
      .prepare(
        `INSERT INTO disks (host_id, source, portals, target_iqn, lun, chap_user, chap_secret, mutual_user, mutual_secret, created_at, updated_at)
         VALUES (@hostId, @source, @portals, @targetIqn, @lun, @chapUser, @chapSecret, @mutualUser, @mutualSecret, @at, @at)
         ON CONFLICT (host_id) DO UPDATE SET source = excluded.source, portals = excluded.portals, target_iqn = excluded.target_iqn,
           lun = excluded.lun, chap_user = excluded.chap_user, chap_secret = excluded.chap_secret,
           mutual_user = excluded.mutual_user, mutual_secret = excluded.mutual_secret, updated_at = excluded.updated_at`,
      )
      .run({ hostId, source, ...d, portals: JSON.stringify(d.portals), at });
  }

  private checkHostnameFree(hostname: string | null, mac: string): void {
    if (!hostname) return;
    const other = statement(this.db, 'SELECT mac FROM hosts WHERE hostname = ? AND mac != ?').get(hostname, mac) as { mac: string } | undefined;
    if (other) throw new ConflictError(`hostname: "${hostname}" is already used by ${other.mac}`, 'hostname');
  }

  private checkIpFree(ip: string | null, mac: string): void {
    if (!ip) return;
    const other = statement(this.db, 'SELECT mac FROM hosts WHERE ip = ? AND mac != ?').get(ip, mac) as { mac: string } | undefined;
    if (other) throw new ConflictError(`ip: ${ip} is already reserved for ${other.mac}`, 'ip');
  }

  private checkProfile(profile: string | null): void {
    if (profile && !statement(this.db, 'SELECT 1 FROM profiles WHERE name = ?').get(profile)) {
      throw new ValidationError(`profile: "${profile}" does not exist (create it with "hiveboot profile add")`, 'profile');
    }
  }

  private generateHostname(mac: string): string {
    const hex = mac.replace(/:/g, '');
    for (const candidate of [`node-${hex.slice(6)}`, `node-${hex}`]) {
      if (!statement(this.db, 'SELECT 1 FROM hosts WHERE hostname = ? AND mac != ?').get(candidate, mac)) return candidate;
    }
    throw new ConflictError(`hostname: cannot make a free host name for ${mac}; pass one`, 'hostname');
  }
}

/** The API's view of a host: disk secrets are write-only. */
export function hostView(h: Host): HostView {
  return {
    mac: h.mac,
    hostname: h.hostname,
    profile: h.profile,
    state: h.state,
    labels: h.labels,
    facts: h.facts,
    initiatorIqn: h.initiatorIqn,
    ip: h.ip,
    bootFile: h.bootFile,
    lastIp: h.lastIp,
    lastSeenAt: h.lastSeenAt,
    disk: h.disk && {
      source: h.disk.source,
      portals: h.disk.portals,
      targetIqn: h.disk.targetIqn,
      lun: h.disk.lun,
      chapUser: h.disk.chapUser,
      hasChapSecret: h.disk.chapSecret !== null,
      mutualUser: h.disk.mutualUser,
      hasMutualSecret: h.disk.mutualSecret !== null,
      updatedAt: h.disk.updatedAt,
    },
    createdAt: h.createdAt,
    updatedAt: h.updatedAt,
  };
}

interface CleanDisk {
  portals: string[];
  targetIqn: string;
  lun: number;
  chapUser: string | null;
  chapSecret: string | null;
  mutualUser: string | null;
  mutualSecret: string | null;
}

function cleanDisk(d: DiskInput): CleanDisk {
  const portals = d.portals.map((p, i) => formatPortal(parsePortal(p, `disk.portals.${i}`)));
  if (new Set(portals).size !== portals.length) throw new ValidationError('disk.portals: lists the same portal twice', 'disk.portals');
  const targetIqn = normalizeIqn(d.targetIqn, 'disk.targetIqn');
  const lun = d.lun ?? 0;
  if (!Number.isInteger(lun) || lun < 0 || lun > 16383) throw new ValidationError('disk.lun: must be 0-16383', 'disk.lun');
  if ((d.chapUser === undefined) !== (d.chapSecret === undefined)) {
    throw new ValidationError('disk: chapUser and chapSecret go together', d.chapUser === undefined ? 'disk.chapUser' : 'disk.chapSecret');
  }
  if ((d.mutualUser === undefined) !== (d.mutualSecret === undefined)) {
    throw new ValidationError('disk: mutualUser and mutualSecret go together', d.mutualUser === undefined ? 'disk.mutualUser' : 'disk.mutualSecret');
  }
  if (d.mutualUser !== undefined && d.chapUser === undefined) {
    throw new ValidationError('disk.mutualUser: mutual CHAP needs one-way CHAP (chapUser, chapSecret) too', 'disk.mutualUser');
  }
  const chapUser = d.chapUser !== undefined ? validateChapUser(d.chapUser, 'disk.chapUser') : null;
  const chapSecret = d.chapSecret !== undefined ? validateChapSecret(d.chapSecret, 'disk.chapSecret') : null;
  const mutualUser = d.mutualUser !== undefined ? validateChapUser(d.mutualUser, 'disk.mutualUser') : null;
  const mutualSecret = d.mutualSecret !== undefined ? validateChapSecret(d.mutualSecret, 'disk.mutualSecret') : null;
  if (mutualSecret !== null && mutualSecret === chapSecret) {
    // RFC 7143 section 12.1.3: the two directions must not share a secret (it enables reflection).
    throw new ValidationError('disk.mutualSecret: must differ from chapSecret', 'disk.mutualSecret');
  }
  return { portals, targetIqn, lun, chapUser, chapSecret, mutualUser, mutualSecret };
}

/** Facts come from firmware: keep them short, printable and free of anything an iPXE line dislikes. */
function cleanFactsMap(facts: Facts): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(facts)) {
    if (k === 'mac' || typeof v !== 'string') continue;
    const s = v.replace(/[^\x20-\x7e]/g, '').trim().slice(0, 128);
    if (s) out[k] = s;
  }
  return out;
}

function describeFacts(f: Record<string, string>): string {
  const parts = [f.manufacturer, f.product, f.buildarch ?? f.arch, f.platform].filter(Boolean);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

function describeState(state: HostState, c: { hostname: string | null; profile: string | null; hasDisk: boolean }): string {
  switch (state) {
    case 'ready':
      return 'has a host name, a profile and a disk: boots its disk';
    case 'pending':
      return `waiting for ${missingForBoot(c).join(', ')}`;
    case 'discovered':
      return 'waiting for approval';
    case 'disabled':
      return 'disabled: boots the next device';
  }
}

interface HostRow {
  id: number;
  mac: string;
  hostname: string | null;
  profile: string | null;
  state: HostState;
  labels: string;
  facts: string;
  initiator_iqn: string | null;
  ip: string | null;
  boot_file: string | null;
  last_ip: string | null;
  last_seen_at: string | null;
  created_at: string;
  updated_at: string;
  d_source: string | null;
  d_portals: string | null;
  d_target_iqn: string | null;
  d_lun: number | null;
  d_chap_user: string | null;
  d_chap_secret: string | null;
  d_mutual_user: string | null;
  d_mutual_secret: string | null;
  d_updated_at: string | null;
}

function toBrief(r: BriefRow): HostBrief {
  return { mac: r.mac, hostname: r.hostname, profile: r.profile, state: r.state, ip: r.ip, bootFile: r.boot_file };
}

function toHost(r: HostRow): Host {
  return {
    id: r.id,
    mac: r.mac,
    hostname: r.hostname,
    profile: r.profile,
    state: r.state,
    labels: parseJsonMap(r.labels),
    facts: parseJsonMap(r.facts),
    initiatorIqn: r.initiator_iqn,
    ip: r.ip,
    bootFile: r.boot_file,
    lastIp: r.last_ip,
    lastSeenAt: r.last_seen_at,
    disk:
      r.d_target_iqn === null
        ? null
        : {
            source: r.d_source!,
            portals: JSON.parse(r.d_portals!) as string[],
            targetIqn: r.d_target_iqn,
            lun: r.d_lun!,
            chapUser: r.d_chap_user,
            chapSecret: r.d_chap_secret,
            mutualUser: r.d_mutual_user,
            mutualSecret: r.d_mutual_secret,
            updatedAt: r.d_updated_at!,
          },
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}
