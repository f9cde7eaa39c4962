// A built-in target on loopback for tests: one target, file- or cow-backed LUN 0, CHAP from the caller.
// Runs in-process (startTestTarget) or as a child (`node --import tsx test/support/iscsi-target.ts
// <json>`, printing "ready <port>") for tests that kill it.
import { openBacking, type BackingSpec, type BlockDevice } from '../../src/iscsi/backing/index.js';
import type { ConnectionOptions } from '../../src/iscsi/connection.js';
import { LoginNegotiator } from '../../src/iscsi/login/negotiator.js';
import type { ChapCredentials } from '../../src/iscsi/login/types.js';
import { LogicalUnit } from '../../src/iscsi/scsi/logical-unit.js';
import { IscsiServer } from '../../src/iscsi/server.js';
import { writeLength } from '../../src/iscsi/service.js';
import { TargetTable } from '../../src/iscsi/target.js';

export interface TestTargetSpec {
  backing: BackingSpec;
  targets: { name: string; acl: string[]; chap?: ChapCredentials }[];
  port?: number;
  connection?: Partial<ConnectionOptions>;
  discoveryNeedsChap?: boolean;
}

export interface TestTarget {
  port: number;
  server: IscsiServer;
  url(target: string, user?: string, secret?: string, lun?: number): string;
  stop(): Promise<void>;
}

export async function startTestTarget(spec: TestTargetSpec): Promise<TestTarget> {
  const table = new TargetTable(spec.discoveryNeedsChap ?? true);
  const devices: BlockDevice[] = [];
  const server = new IscsiServer({
    directory: table,
    createNegotiator: () => new LoginNegotiator(table),
    ...(spec.connection ? { connection: spec.connection } : {}),
  });
  const { port } = await server.listen('127.0.0.1', spec.port ?? 0);
  for (const [i, t] of spec.targets.entries()) {
    // Each target gets its own device when several share a file spec is not wanted: one device per target.
    const device = await openBacking(i === 0 ? spec.backing : { ...spec.backing, ...('path' in spec.backing ? { path: `${spec.backing.path}.${i}` } : {}) } as BackingSpec);
    devices.push(device);
    const unit = new LogicalUnit({
      device,
      identity: {
        serial: `TEST${i}`,
        naaId: Buffer.alloc(16, i + 1),
        vendor: 'HIVEBOOT',
        product: 'test disk',
        revision: '0001',
        targetName: t.name,
        luns: () => [0],
      },
    });
    table.set({
      access: { name: t.name, acl: t.acl, ...(t.chap ? { chap: t.chap } : {}), portals: [`127.0.0.1:${port},1`] },
      luns: new Map([[0, { execute: (c) => unit.execute(c), validate: (c) => unit.validate(c), writeLength: (c) => writeLength(unit, c), maxTransferBytes: unit.limits.maxTransferBlocks * 512 }]]),
    });
  }
  return {
    port,
    server,
    url: (target, user, secret, lun = 0) =>
      `iscsi://${user ? `${encodeURIComponent(user)}%${encodeURIComponent(secret ?? '')}@` : ''}127.0.0.1:${port}/${target}/${lun}`,
    async stop() {
      await server.close();
      for (const d of devices) await d.close();
    },
  };
}

if (process.argv[1]?.endsWith('iscsi-target.ts') && process.argv[2]) {
  const spec = JSON.parse(process.argv[2]) as TestTargetSpec;
  const target = await startTestTarget(spec);
  process.stdout.write(`ready ${target.port}\n`);
  process.on('SIGTERM', () => void target.stop().then(() => process.exit(0)));
}
