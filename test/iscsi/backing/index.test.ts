import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CowBacking, FileBacking, createCowOverlay, openBacking } from '../../../src/iscsi/backing/index.js';
import { rejectsWith, tempDir, writeGolden } from './helpers.js';

describe('openBacking', () => {
  it('opens each kind from its spec', async () => {
    const dir = tempDir();
    const file = await openBacking({ kind: 'file', path: join(dir, 'a.img'), size: 1 << 20 });
    expect(file).toBeInstanceOf(FileBacking);
    expect(file.size).toBe(1 << 20);
    await file.close();

    const golden = join(dir, 'golden.img');
    writeGolden(golden, 1 << 20);
    await createCowOverlay(golden, join(dir, 'h.cow'));
    const cow = await openBacking({ kind: 'cow', golden, overlay: join(dir, 'h.cow'), ordered: false });
    expect(cow).toBeInstanceOf(CowBacking);
    await cow.write(0, Buffer.alloc(4096, 1));
    expect((cow as CowBacking).stats.syncs).toBe(0); // ordered: false reached the backing
    await cow.close();

    const ro = await openBacking({ kind: 'cow', golden, overlay: join(dir, 'h.cow'), readOnly: true });
    await rejectsWith(ro.write(0, Buffer.alloc(512)), 'READ_ONLY');
    await ro.close();
  });
});
