// A built-in target on loopback for tests: one target, file- or cow-backed LUN 0, CHAP from the caller.
// Runs in-process (startTestTarget) or as a child (`node --import tsx test/support/iscsi-target.ts
// <json>`, printing "ready <port>") for tests that kill it.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { openBacking, type BackingSpec, type BlockDevice } from '../../src/iscsi/backing/index.js';
import type { ConnectionOptions } from '../../src/iscsi/connection.js';
import { LoginNegotiator } from '../../src/iscsi/login/negotiator.js';
import type { TargetOperationalLimits } from '../../src/iscsi/login/operational-params.js';
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
  /**
   * Each write-direction command waits up to this long (random) before it reaches the logical unit: a
   * slow, reordering storage path (RBD-like), for tests about what may still land after a session ends.
   */
  writeDelayMs?: number;
  /** The negotiator's operational limits (MaxOutstandingR2T, MaxBurstLength…). */
  limits?: Partial<TargetOperationalLimits>;
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
    createNegotiator: () => new LoginNegotiator(table, spec.limits ? { limits: spec.limits } : {}),
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
      luns: new Map([[0, { execute: async (c) => {
        if (spec.writeDelayMs && writeLength(unit, c.cdb) !== undefined) await new Promise((r) => setTimeout(r, Math.random() * spec.writeDelayMs!));
        return unit.execute(c);
      }, validate: (c) => unit.validate(c), writeLength: (c) => writeLength(unit, c), maxTransferBytes: unit.limits.maxTransferBlocks * 512 }]]),
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

export interface ChildTarget {
  port: number;
  pid: number;
  child: ChildProcess;
  /** Resolves with the exit code or signal once the child is gone. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Everything the child wrote to stderr so far. */
  stderr(): string;
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts the target as a child process (for tests that kill it or watch its memory). */
export async function spawnTestTarget(spec: TestTargetSpec, timeoutMs = 30_000): Promise<ChildTarget> {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const script = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(spec)], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    if (stderr.length < 65536) stderr += d.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`target child not ready within ${timeoutMs} ms; stderr:\n${stderr}`));
    }, timeoutMs);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ready (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`target child exited (${code}, ${signal}) before it was ready; stderr:\n${stderr}`));
    });
  });
  return {
    port,
    pid: child.pid!,
    child,
    exited,
    stderr: () => stderr,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
