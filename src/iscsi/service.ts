// The built-in target as a daemon service: the portal, the target table the provisioner publishes
// into, one open backing + logical unit per host, and every login, refusal and session end written to
// the host's timeline. Credentials live in the target table only; nothing here logs them.

import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Inventory } from '../inventory/index.js';
import type { Metrics } from '../metrics.js';
import type { PublishedTarget, TargetPublisher } from '../storage/builtin.js';
import { openBacking, type BlockDevice } from './backing/index.js';
import type { ConnectionOptions } from './connection.js';
import { LoginNegotiator } from './login/negotiator.js';
import { LoginStatus } from './login/types.js';
import { LogicalUnit } from './scsi/logical-unit.js';
import { IscsiServer } from './server.js';
import { TargetTable, type LogicalUnitHandler } from './target.js';

export const TARGET_PORTAL_GROUP = 1;

/** SPDTL of a write-direction command, from its CDB. */
export function writeLength(unit: LogicalUnit, cdb: Buffer): number | undefined {
  const t = unit.dataTransfer(cdb);
  return t.direction === 'write' ? t.length : undefined;
}

export interface IscsiServiceOptions {
  listen: string;
  port: number;
  discoveryNeedsChap: boolean;
  connection?: Partial<ConnectionOptions>;
}

interface Served {
  mac: string;
  targetName: string;
  /** The backing it was opened with, as a key: another one means another disk. */
  backingKey: string;
  device: BlockDevice;
  unit: LogicalUnit;
}

const STATUS_WORDS: Record<number, string> = {
  [LoginStatus.AuthenticationFailure]: 'authentication failed',
  [LoginStatus.AuthorizationFailure]: 'initiator not allowed',
  [LoginStatus.NotFound]: 'no such target',
  [LoginStatus.TargetRemoved]: 'target removed',
};

export class IscsiService implements TargetPublisher {
  readonly table: TargetTable;
  readonly server: IscsiServer;
  private readonly served = new Map<string, Served>();
  private readonly macByTarget = new Map<string, string>();

  constructor(
    private readonly inventory: Inventory,
    private readonly log: Logger,
    private readonly metrics: Metrics | undefined,
    private readonly opts: IscsiServiceOptions,
  ) {
    this.table = new TargetTable(opts.discoveryNeedsChap);
    this.server = new IscsiServer({
      directory: this.table,
      createNegotiator: () => new LoginNegotiator(this.table, { portalGroupTag: TARGET_PORTAL_GROUP }),
      ...(opts.connection ? { connection: opts.connection } : {}),
      hooks: {
        onLogin: (s, reinstated) => {
          const mac = s.targetName ? this.macByTarget.get(s.targetName) : undefined;
          this.metrics?.iscsiLogins.inc({ outcome: 'ok' });
          this.metrics?.iscsiSessions.set(this.server.sessions.size);
          this.log.info({ peer: s.peerAddress, initiator: s.initiatorName, target: s.targetName, type: s.type, reinstated }, 'iscsi login');
          if (mac) {
            this.inventory.events.record({
              mac,
              stage: 'iscsi-login',
              sourceIp: s.peerAddress,
              message: `iSCSI login from ${s.initiatorName}${reinstated ? ' (session reinstated)' : ''}`,
              reason: s.chapUser ? 'CHAP authenticated' : 'no authentication',
            });
          }
        },
        onLoginRefused: (r) => {
          this.metrics?.iscsiLogins.inc({ outcome: 'refused' });
          const words = STATUS_WORDS[r.status] ?? `status 0x${r.status.toString(16).padStart(4, '0')}`;
          this.log.warn({ peer: r.peerAddress, status: r.status, reason: r.reason }, `iscsi login refused: ${words}`);
          const mac = this.inventory.hosts.findByLastIp(r.peerAddress)?.mac;
          if (mac) {
            this.inventory.events.record({
              mac,
              stage: 'iscsi-login',
              sourceIp: r.peerAddress,
              message: `iSCSI login refused: ${words}`,
              reason: r.reason ?? words,
            });
          }
        },
        onSessionEnd: (s, reason) => {
          this.metrics?.iscsiSessions.set(this.server.sessions.size);
          this.log.info({ peer: s.peerAddress, target: s.targetName, reason }, 'iscsi session ended');
        },
        onProtocolError: (peer, message) => this.log.warn({ peer, message }, 'iscsi protocol error'),
        onCommand: (target, lun, kind, bytes, seconds) => {
          if (kind === 'other') return;
          this.metrics?.iscsiBytes.inc({ target, lun: String(lun), direction: kind }, bytes);
          this.metrics?.iscsiLatency.observe({ target, direction: kind }, seconds);
        },
      },
    });
  }

  async start(): Promise<{ address: string; port: number }> {
    return this.server.listen(this.opts.listen, this.opts.port);
  }

  /** Serves (or updates) one host's target: opens its disk once, then only access changes. */
  async publish(t: PublishedTarget): Promise<void> {
    let served = this.served.get(t.mac);
    const backingKey = JSON.stringify(t.backing);
    if (served && served.backingKey !== backingKey) {
      await this.withdraw(t.mac, 'disk changed');
      served = undefined;
    }
    if (!served) {
      const device = await openBacking(t.backing);
      const unit = new LogicalUnit({
        device,
        identity: {
          serial: t.mac.replace(/:/g, ''),
          // Stable across restarts and unique per host disk: Linux names /dev/disk/by-id from it.
          naaId: createHash('sha256').update(`hiveboot-lun:${t.diskId}`).digest().subarray(0, 16),
          vendor: 'HIVEBOOT',
          product: 'hiveboot disk',
          revision: '0001',
          targetName: t.targetName,
          luns: () => [0],
        },
        onInternalError: (err) => this.log.error({ err, target: t.targetName }, 'scsi internal error'),
      });
      served = { mac: t.mac, targetName: t.targetName, backingKey, device, unit };
      this.served.set(t.mac, served);
    }
    if (served.targetName !== t.targetName) {
      // Renamed target: sessions on the old name end; the LUN stays open.
      this.table.delete(served.targetName);
      this.macByTarget.delete(served.targetName);
      await this.server.sessions.closeTarget(served.targetName, 'target renamed');
      served.targetName = t.targetName;
    }
    const unit = served.unit;
    const handler: LogicalUnitHandler = {
      execute: (cmd) => unit.execute(cmd),
      validate: (cdb) => unit.validate(cdb),
      writeLength: (cdb) => writeLength(unit, cdb),
      maxTransferBytes: unit.limits.maxTransferBlocks * unit.blockSize,
      blockSize: unit.blockSize,
    };
    this.table.set({
      access: {
        name: t.targetName,
        alias: t.mac,
        acl: [t.initiatorIqn],
        chap: t.chap,
        portals: t.portals.map((p) => `${p},${TARGET_PORTAL_GROUP}`),
      },
      luns: new Map([[0, handler]]),
    });
    this.macByTarget.set(t.targetName, t.mac);
  }

  async withdraw(mac: string, reason: string): Promise<void> {
    const served = this.served.get(mac);
    if (!served) return;
    this.served.delete(mac);
    this.table.delete(served.targetName);
    this.macByTarget.delete(served.targetName);
    await this.server.sessions.closeTarget(served.targetName, reason);
    await served.device.close();
  }

  /** Whether a host is logged in to its target from this address right now (metadata binding). */
  loggedInFrom(mac: string, address: string): boolean {
    const served = this.served.get(mac);
    if (!served) return false;
    return this.server.sessions.forTarget(served.targetName).some((s) => s.peerAddress === address);
  }

  async stop(): Promise<void> {
    await this.server.close();
    for (const served of this.served.values()) await served.device.close().catch(() => undefined);
    this.served.clear();
  }
}
