import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createCowOverlay } from '../../../src/iscsi/backing/cow.js';
import { openBacking, type BackingSpec } from '../../../src/iscsi/backing/index.js';
import { crashData } from './data.js';
import { sha256File, tempDir, writeGolden } from './helpers.js';

/**
 * kill -9 in the middle of writes: a child writes random blocks (8 writers in flight, many of them
 * partial clusters racing copy-ups) and prints each write once write() resolved; we SIGKILL it, open
 * the backing again and check that every acknowledged write is there. Three rounds per backing on the
 * same disk, killed after a different number of writes.
 *
 * Writes are regenerated from their sequence number, so every sector is checked, not only the
 * acknowledged ones: a sector must hold the last acknowledged write covering it or a write issued
 * after that one (in flight at the kill), or — if no acknowledged write covers it — its content before
 * the round or any write of the round. Nothing else: no zeroes from a half-recorded allocation, no
 * golden bytes from a half-copied cluster.
 */

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const WRITER = fileURLToPath(new URL('./fixtures/crash-writer.ts', import.meta.url));
const SIZE = 32 << 20;
const SECTOR = 512;

interface Issued {
  offset: number;
  length: number;
  discard: boolean;
}

interface Round {
  issued: Map<number, Issued>;
  acked: Map<number, string>;
}

function runAndKill(round: number, spec: BackingSpec, acks: number): Promise<Round> {
  const result: Round = { issued: new Map(), acked: new Map() };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WRITER, String(round), JSON.stringify(spec)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let killed = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`round ${round}: ${result.acked.size} of ${acks} acknowledgements in time; stderr:\n${stderr}`));
    }, 40_000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      let m: RegExpExecArray | null;
      if ((m = /^I (\d+) (\d+) (\d+) ([WD])$/.exec(line))) {
        result.issued.set(Number(m[1]), { offset: Number(m[2]), length: Number(m[3]), discard: m[4] === 'D' });
      } else if ((m = /^A (\d+) ([0-9a-f]{64})$/.exec(line))) {
        result.acked.set(Number(m[1]), m[2]!);
        if (result.acked.size === acks && !killed) {
          killed = true;
          child.kill('SIGKILL');
        }
      } // else READY, or a line cut short by the kill
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (!killed || signal !== 'SIGKILL') reject(new Error(`round ${round}: writer exited by itself (${code}, ${signal}); stderr:\n${stderr}`));
      else resolve(result);
    });
  });
}

/** Checks the disk after a kill against what the round reported; returns how many writes were checked whole. */
function verify(name: string, round: number, before: Buffer, after: Buffer, r: Round): number {
  const seqs = [...r.issued.keys()].sort((a, b) => a - b);
  const covering: number[][] = Array.from({ length: SIZE / SECTOR }, () => []);
  for (const seq of seqs) {
    const w = r.issued.get(seq)!;
    for (let s = w.offset / SECTOR; s < (w.offset + w.length) / SECTOR; s++) covering[s]!.push(seq);
  }
  const dataCache = new Map<number, Buffer>();
  const sectorOf = (seq: number, s: number): Buffer => {
    const w = r.issued.get(seq)!;
    let data = dataCache.get(seq);
    if (!data) {
      data = w.discard ? Buffer.alloc(w.length) : crashData(round, seq, w.length);
      dataCache.set(seq, data);
    }
    const at = s * SECTOR - w.offset;
    return data.subarray(at, at + SECTOR);
  };

  // Every acknowledged write that nothing issued later overlaps: exactly its bytes.
  let whole = 0;
  for (const [seq, hash] of r.acked) {
    const w = r.issued.get(seq)!;
    const first = w.offset / SECTOR;
    const last = (w.offset + w.length) / SECTOR;
    let overlapped = false;
    for (let s = first; s < last && !overlapped; s++) overlapped = covering[s]!.at(-1)! > seq;
    if (overlapped) continue;
    const got = createHash('sha256').update(after.subarray(w.offset, w.offset + w.length)).digest('hex');
    expect(got, `${name} round ${round}: acknowledged write ${seq} (${w.offset}+${w.length}) is not on disk`).toBe(hash);
    whole++;
  }

  // Every sector: see the file comment.
  for (let s = 0; s < covering.length; s++) {
    const actual = after.subarray(s * SECTOR, (s + 1) * SECTOR);
    const list = covering[s]!;
    let lastAcked = -1;
    for (let i = list.length - 1; i >= 0; i--) {
      if (r.acked.has(list[i]!)) {
        lastAcked = i;
        break;
      }
    }
    const candidates = lastAcked >= 0 ? list.slice(lastAcked) : list;
    if (lastAcked < 0 && actual.equals(before.subarray(s * SECTOR, (s + 1) * SECTOR))) continue;
    if (candidates.some((seq) => actual.equals(sectorOf(seq, s)))) continue;
    expect.fail(
      `${name} round ${round}: sector ${s} holds none of the allowed contents ` +
        `(writes covering it: ${list.join(',') || 'none'}; last acknowledged: ${lastAcked >= 0 ? list[lastAcked] : 'none'})`,
    );
  }
  return whole;
}

async function readAll(spec: BackingSpec): Promise<Buffer> {
  const dev = await openBacking(spec);
  try {
    expect(dev.size).toBe(SIZE);
    return await dev.read(0, SIZE);
  } finally {
    await dev.close();
  }
}

async function crashRounds(name: string, spec: BackingSpec): Promise<void> {
  let before = await readAll(spec);
  let acked = 0;
  let whole = 0;
  for (const [round, acks] of [
    [1, 300],
    [2, 1500],
    [3, 4000],
  ] as const) {
    const r = await runAndKill(round, spec, acks);
    expect(r.acked.size).toBeGreaterThanOrEqual(acks);
    const after = await readAll(spec);
    whole += verify(name, round, before, after, r);
    acked += r.acked.size;
    before = after;
  }
  expect(acked).toBeGreaterThanOrEqual(5800);
  expect(whole).toBeGreaterThan(1000);
}

describe('backings keep every acknowledged write across kill -9', () => {
  it('runs the writer fixture under node --import tsx', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', WRITER], { cwd: ROOT, encoding: 'utf8', timeout: 15_000 });
    expect(r.stderr).toContain('usage: crash-writer.ts');
    expect(r.status).toBe(2);
  });

  it('file backing', { timeout: 180_000 }, async () => {
    const path = join(tempDir(), 'disk.img');
    const spec: BackingSpec = { kind: 'file', path, size: SIZE };
    await crashRounds('file', spec);
  });

  it('cow backing (the golden image untouched)', { timeout: 180_000 }, async () => {
    const dir = tempDir();
    const golden = join(dir, 'golden.img');
    const overlay = join(dir, 'host.cow');
    writeGolden(golden, SIZE, 42);
    const sum = sha256File(golden);
    await createCowOverlay(golden, overlay);
    await crashRounds('cow', { kind: 'cow', golden, overlay });
    expect(sha256File(golden)).toBe(sum);
  });
});
