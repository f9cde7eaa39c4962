import { describe, expect, it } from 'vitest';
import { GroupSync } from '../../../src/iscsi/backing/group-sync.js';

describe('GroupSync', () => {
  it('shares one fdatasync among callers arriving while another runs, and never reuses one that started earlier', async () => {
    const started: number[] = [];
    const finish: (() => void)[] = [];
    const g = new GroupSync(
      () =>
        new Promise<void>((resolve) => {
          started.push(Date.now());
          finish.push(resolve);
        }),
    );
    const first = g.sync();
    const waiters = [g.sync(), g.sync(), g.sync()];
    expect(g.count).toBe(1);
    let done = 0;
    for (const w of waiters) void w.then(() => done++);
    finish[0]!();
    await first;
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(0); // they arrived after the first had started: they need the second
    expect(g.count).toBe(2);
    finish[1]!();
    await Promise.all(waiters);
    expect(g.count).toBe(2);
  });

  it('passes a failure to every caller of that round and recovers afterwards', async () => {
    let fail = true;
    const g = new GroupSync(async () => {
      if (fail) throw new Error('EIO');
    });
    await expect(g.sync()).rejects.toThrow('EIO');
    fail = false;
    await expect(g.sync()).resolves.toBeUndefined();
  });
});
