// Reading a guest's disk from the host side, after the fact: the guest image has no login for the
// tests, so what a booted host wrote is read from its copy-on-write overlay instead. The root file
// system's byte range is copied out of the overlay (through hiveboot's own cow reader, read-only)
// into a sparse temporary file, which debugfs then reads without mounting anything.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openCowOverlay } from '../../src/iscsi/backing/index.js';

const run = promisify(execFile);
const CHUNK = 1 << 20;

export interface RootFsCopy {
  /** The sparse copy of the root file system (an ext4 image). */
  path: string;
  /** Bytes of the copy (the root partition's size). */
  size: number;
  /** Bytes actually copied (mapped and non-zero). */
  copied: number;
  /** What dumpe2fs said before anything touched the copy: unmounted cleanly, no journal to replay. */
  clean: boolean;
  /** "Filesystem state" and "Filesystem features" lines, for messages. */
  superblock: string;
  /** e2fsck's output when the copy was not clean and had to be repaired (journal replay), else undefined. */
  fsck?: string;
  /** File content, or undefined when the file does not exist. */
  cat(path: string): Promise<string | undefined>;
  /** Names in a directory (without . and ..), or undefined when it does not exist. */
  ls(path: string): Promise<string[] | undefined>;
  /** Deletes the temporary copy. */
  remove(): void;
}

/** Byte range [start, end) of the MBR partition starting at `offset` (a dos label), if there is one. */
function mbrPartitionAt(sector0: Buffer, offset: number): { start: number; size: number } | undefined {
  if (sector0.readUInt16LE(510) !== 0xaa55) return undefined;
  for (let i = 0; i < 4; i++) {
    const e = 446 + i * 16;
    const type = sector0[e + 4]!;
    const start = sector0.readUInt32LE(e + 8) * 512;
    const size = sector0.readUInt32LE(e + 12) * 512;
    if (type !== 0 && start === offset && size > 0) return { start, size };
  }
  return undefined;
}

/**
 * Copies the root file system of a host's disk — `overlay` over `golden`, the partition starting at
 * `rootOffset` (the golden image's build-info) — into a sparse file under `dir` (default: a new
 * temporary folder), skipping unmapped ranges and all-zero chunks. The overlay is opened read-only
 * (it must not be open in hiveboot any more: overlays are flock'ed while served). When the file system
 * was not left clean, e2fsck -fy repairs the copy (journal replay) so that debugfs reads what the
 * guest last committed; `clean` and `fsck` say whether that was needed.
 */
export async function copyRootFs(golden: string, overlay: string, rootOffset: number, dir?: string): Promise<RootFsCopy> {
  const ownDir = dir === undefined;
  const where = dir ?? mkdtempSync(join(tmpdir(), 'hb-guest-disk-'));
  const path = join(where, `${overlay.replace(/^.*\//, '')}.rootfs`);
  const device = await openCowOverlay(golden, overlay, { readOnly: true });
  let size: number;
  let copied = 0;
  try {
    const part = mbrPartitionAt(await device.read(0, 512), rootOffset);
    size = part ? part.size : device.size - rootOffset;
    const end = rootOffset + size;
    if (end > device.size) throw new Error(`${overlay}: root partition ends at ${end}, past the device's ${device.size} bytes`);
    const out = await open(path, 'w', 0o600);
    try {
      await out.truncate(size);
      const zero = Buffer.alloc(CHUNK);
      let at = rootOffset;
      while (at < end) {
        const extents = await device.extents(at, end - at);
        if (extents.length === 0) break;
        for (const e of extents) {
          const from = Math.max(e.offset, at);
          const to = Math.min(e.offset + e.length, end);
          if (!e.mapped) continue;
          for (let o = from; o < to; o += CHUNK) {
            const n = Math.min(CHUNK, to - o);
            const buf = await device.read(o, n);
            if (buf.equals(n === CHUNK ? zero : zero.subarray(0, n))) continue;
            await out.write(buf, 0, n, o - rootOffset);
            copied += n;
          }
        }
        const last = extents[extents.length - 1]!;
        const next = last.offset + last.length;
        if (next <= at) throw new Error(`${overlay}: extents did not advance past ${at}`);
        at = next;
      }
    } finally {
      await out.close();
    }
  } finally {
    await device.close();
  }

  const remove = () => rmSync(ownDir ? where : path, { recursive: true, force: true });
  try {
    const { stdout: header } = await run('dumpe2fs', ['-h', path], { maxBuffer: 16 << 20 });
    const state = /^Filesystem state:\s*(.*)$/m.exec(header)?.[1]?.trim() ?? '?';
    const features = /^Filesystem features:\s*(.*)$/m.exec(header)?.[1]?.trim() ?? '?';
    const clean = state === 'clean' && !/\bneeds_recovery\b/.test(features);
    let fsck: string | undefined;
    if (!clean) {
      // Exit codes 1 and 2 mean "errors corrected" (a journal replay counts): fine for a copy.
      const r = await run('e2fsck', ['-fy', path], { maxBuffer: 16 << 20 }).catch((err: { code?: number; stdout?: string; stderr?: string }) => {
        if (err.code === 1 || err.code === 2) return { stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
        throw new Error(`e2fsck -fy on the copy of ${overlay} failed (${err.code}):\n${err.stdout ?? ''}${err.stderr ?? ''}`);
      });
      fsck = `${r.stdout}${r.stderr}`;
    }
    const debugfs = async (request: string): Promise<{ stdout: string; stderr: string }> =>
      run('debugfs', ['-R', request, path], { maxBuffer: 64 << 20, encoding: 'latin1' });
    const missing = (stderr: string) => /File not found by ext2_lookup|not found/.test(stderr);
    return {
      path,
      size,
      copied,
      clean,
      superblock: `Filesystem state: ${state}; features: ${features}`,
      fsck,
      async cat(file) {
        const r = await debugfs(`cat ${quote(file)}`);
        return missing(r.stderr) ? undefined : r.stdout;
      },
      async ls(folder) {
        const r = await debugfs(`ls -p ${quote(folder)}`);
        if (missing(r.stderr)) return undefined;
        // ls -p: /inode/mode/uid/gid/name/size/ per entry.
        return r.stdout
          .split('\n')
          .map((l) => l.trim().split('/'))
          .filter((f) => f.length >= 7)
          .map((f) => f[5]!)
          .filter((n) => n !== '.' && n !== '..');
      },
      remove,
    };
  } catch (err) {
    remove();
    throw err;
  }
}

function quote(path: string): string {
  if (!/^[A-Za-z0-9_./+-]+$/.test(path)) throw new Error(`debugfs path with unusual characters: ${path}`);
  return path;
}

export interface FileFingerprint {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  /** sha256 of the first MiB, the last MiB and the MiB at `alsoAt` (e.g. the root file system's superblock). */
  samples: string;
}

/**
 * A cheap fingerprint of a large file (the golden image): size, mtime, ctime (any write or utimes
 * moves it) and hashes of a few MiB, among them the root file system's first MiB — its superblock
 * records every read-write mount.
 */
export async function fingerprint(path: string, alsoAt: number[] = []): Promise<FileFingerprint> {
  const st = await stat(path);
  const fh = await open(path, 'r');
  try {
    const hash = createHash('sha256');
    for (const at of [0, Math.max(0, st.size - CHUNK), ...alsoAt]) {
      const buf = Buffer.alloc(Math.min(CHUNK, Math.max(0, st.size - at)));
      let got = 0;
      while (got < buf.length) {
        const { bytesRead } = await fh.read(buf, got, buf.length - got, at + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      hash.update(buf);
    }
    return { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, samples: hash.digest('hex') };
  } finally {
    await fh.close();
  }
}
