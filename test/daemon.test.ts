// The composition root's reload (what SIGHUP does with the re-read config file): settings that can
// change live do so at once, for the next request; the rest is named as waiting for a restart; a
// config whose templates do not load is refused whole and the running one keeps serving.
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_TEMPLATES_DIR } from '../src/boot/render.js';
import { validateConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { startTestDaemon, type TestDaemon } from './http/helpers.js';

describe('daemon reload', () => {
  let t: TestDaemon;
  let dir: string;
  const bootstrap = async () => (await fetch(`${t.url}/boot.ipxe`)).text();
  /** The running config with some fields changed, as the re-read file would give it. */
  const changed = (patch: (raw: Record<string, any>) => void): Config => {
    const raw = JSON.parse(JSON.stringify(t.config)) as Record<string, any>;
    // The test daemon listens on port 0, which only tests may use (the file's own port is real).
    raw.http.port = 8080;
    patch(raw);
    return validateConfig(raw, 'test');
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hb-reload-'));
    t = await startTestDaemon({ boot: { retrySeconds: 5 } });
  });

  afterAll(async () => {
    await t?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('applies boot settings and templates at once, without a restart', async () => {
    expect(await bootstrap()).toContain('retrying in 5 s');
    const templates = join(dir, 'templates');
    cpSync(DEFAULT_TEMPLATES_DIR, templates, { recursive: true });
    writeFileSync(join(templates, 'bootstrap.ipxe.hbs'), '#!ipxe\necho site bootstrap, retry {{v retrySeconds}} s\nchain {{v baseUrl}}/boot/${net0/mac}.ipxe\n');
    t.daemon.reload(changed((c) => ((c.boot.retrySeconds = 9), (c.boot.templatesDir = templates))));
    expect(await bootstrap()).toContain('echo site bootstrap, retry 9 s');
    expect(t.log.text()).toMatch(/"config":"reloaded"/);
  });

  it('names the changes that wait for a restart and keeps the listeners as they are', async () => {
    const url = t.url;
    t.daemon.reload(changed((c) => ((c.http.port = 18999), (c.tftp.maxTransfers = 7))));
    expect(t.log.text()).toMatch(/"fields":\["http","tftp"\].*take effect at the next restart/);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  it('refuses a config whose templates do not load, and keeps serving the previous ones', async () => {
    t.daemon.reload(changed((c) => ((c.boot.retrySeconds = 3), (c.boot.templatesDir = join(dir, 'missing')))));
    expect(t.log.text()).toMatch(/reload failed; keeping the previous config and templates/);
    // Still what the previous reload (the file without templatesDir and retrySeconds 5) set.
    const script = await bootstrap();
    expect(script).toContain('retrying in 5 s');
    expect(script).not.toContain('retrying in 3 s');
  });
});
