import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { probePunchHole } from '../../../src/iscsi/backing/file-io.js';
import { lockFile, punchHole, seekData, seekHole } from '../../../src/iscsi/backing/libc.js';
import { tempDir } from './helpers.js';

describe('libc calls through koffi', () => {
  it('reports a refused punch as EOPNOTSUPP with its errno, from the worker thread', async () => {
    // procfs files have no fallocate: the kernel refuses before touching anything, and writing
    // /proc/self/comm is allowed to the process itself (nothing is written here anyway).
    const fd = openSync('/proc/self/comm', 'r+');
    try {
      await expect(punchHole(fd, 0, 4096)).rejects.toMatchObject({ code: 'EOPNOTSUPP', errno: -95, syscall: 'fallocate' });
      expect(await probePunchHole(fd, 0, punchHole)).toBe(false);
    } finally {
      closeSync(fd);
    }
  });

  it('finds data and holes, and says when no data follows', async () => {
    const path = join(tempDir(), 'sparse.img');
    writeFileSync(path, '');
    const fd = openSync(path, 'r+');
    try {
      writeSync(fd, Buffer.alloc(8192, 1), 0, 8192, 1 << 20);
      writeSync(fd, Buffer.alloc(512), 0, 512, (4 << 20) - 512); // size 4 MiB, the tail block is data
      expect(await seekData(fd, 0)).toBe(1 << 20);
      expect(await seekHole(fd, 1 << 20)).toBe((1 << 20) + 8192);
      expect(await seekData(fd, (1 << 20) + 8192)).toBe((4 << 20) - 4096);
      await punchHole(fd, (4 << 20) - 4096, 4096);
      expect(await seekData(fd, (1 << 20) + 8192)).toBeNull();
      expect(await seekHole(fd, 0)).toBe(0);
      expect(await probePunchHole(fd, 4 << 20, punchHole)).toBe(true);
    } finally {
      closeSync(fd);
    }
  });

  it('takes an exclusive flock only once, and releases it with the descriptor', () => {
    const path = join(tempDir(), 'locked');
    writeFileSync(path, 'x');
    const a = openSync(path, 'r');
    const b = openSync(path, 'r');
    lockFile(a, true);
    expect(() => lockFile(b, true)).toThrow(expect.objectContaining({ code: 'EAGAIN', syscall: 'flock' }));
    expect(() => lockFile(b, false)).toThrow(expect.objectContaining({ code: 'EAGAIN' }));
    closeSync(a);
    lockFile(b, false);
    closeSync(b);
  });
});
