import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { BootService } from '../../src/boot/service.js';
import { DEFAULT_TEMPLATES_DIR, TemplateSet } from '../../src/boot/render.js';
import { validateConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { startDaemon, type Daemon } from '../../src/daemon.js';
import { buildApp, type App } from '../../src/http/app.js';
import { Inventory } from '../../src/inventory/index.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';

/**
 * Test helpers for the HTTP layer, in the manner of fastify/demo's `test/helper.ts`: one function
 * builds the real application (real inventory in a temp dir, shipped templates, real logger config)
 * for `app.inject`, and one starts the whole daemon on 127.0.0.1 for real-HTTP tests.
 */

export const TEST_TOKEN = 'test-token-0123456789abcdef';

/** A writable stream that keeps every line the logger writes, so tests can read the log. */
export class LogCapture extends Writable {
  private chunks: string[] = [];

  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.chunks.push(chunk.toString());
    cb();
  }

  /** Everything written so far, as one string. */
  text(): string {
    return this.chunks.join('');
  }

  /** Every line, parsed (pino writes JSON lines). */
  lines(): Record<string, unknown>[] {
    return this.text()
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  clear(): void {
    this.chunks = [];
  }
}

/** A logger built exactly as the daemon builds its own (same redaction), writing to a capture stream. */
export function captureLogger(level = 'info'): { logger: Logger; capture: LogCapture } {
  const capture = new LogCapture();
  return { logger: createLogger({ level, destination: capture }), capture };
}

export interface TestApp {
  app: App;
  inventory: Inventory;
  boot: BootService;
  token: string;
  log: LogCapture;
  dir: string;
  /** Headers with the right bearer token. */
  auth: Record<string, string>;
  /**
   * app.inject with the right token unless `headers` says otherwise; an object body is sent as JSON,
   * a string body as is (give its content-type in `headers`).
   */
  call(method: HttpMethod, url: string, body?: unknown, headers?: Record<string, string>): Promise<Reply>;
  close(): Promise<void>;
}

export type HttpMethod = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: string;
  /** The body parsed as JSON (throws if it is not JSON). */
  json: any;
}

export interface BuildOptions {
  logLevel?: string;
  bodyLimitBytes?: number;
  defaultProfile?: string;
  discovery?: boolean;
  maxDiscovered?: number;
  publicUrl?: string;
  ready?: () => boolean;
}

/** Builds the app as the daemon does, minus listening; call close() in afterEach/afterAll. */
export async function buildTestApp(opts: BuildOptions = {}): Promise<TestApp> {
  const dir = mkdtempSync(join(tmpdir(), 'hiveboot-http-'));
  const inventory = Inventory.open(join(dir, 'hiveboot.db'));
  const templates = TemplateSet.fromDirectory(DEFAULT_TEMPLATES_DIR);
  const { logger, capture } = captureLogger(opts.logLevel ?? 'info');
  const boot = new BootService(inventory, {
    policy: {
      discovery: opts.discovery ?? true,
      autoEnroll: false,
      defaultProfile: opts.defaultProfile ?? 'default',
      initiatorIqnPrefix: 'iqn.2026-01.io.hiveboot',
    },
    retrySeconds: 10,
    maxDiscovered: opts.maxDiscovered ?? 1000,
    templates: () => templates,
  });
  const metrics = createMetrics({ hostsByState: () => inventory.hosts.countByState() });
  let app: App;
  try {
    app = await buildApp({
      inventory,
      boot,
      metrics,
      apiToken: TEST_TOKEN,
      logger,
      publicUrl: opts.publicUrl,
      defaultProfile: opts.defaultProfile ?? 'default',
      bodyLimitBytes: opts.bodyLimitBytes,
      hasTemplate: (name) => templates.has(name),
      version: '0.0.0-test',
      ...(opts.ready ? { ready: opts.ready } : {}),
    });
    await app.ready();
  } catch (err) {
    inventory.close();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    app,
    inventory,
    boot,
    token: TEST_TOKEN,
    log: capture,
    dir,
    auth: { authorization: `Bearer ${TEST_TOKEN}` },
    async call(method, url, body, headers) {
      const h: Record<string, string> = { ...(headers ?? { authorization: `Bearer ${TEST_TOKEN}` }) };
      let payload: string | undefined;
      if (typeof body === 'string') payload = body;
      else if (body !== undefined) {
        payload = JSON.stringify(body);
        if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['content-type'] = 'application/json';
      }
      const res = await app.inject({ method, url, headers: h, ...(payload !== undefined ? { payload } : {}) });
      return {
        status: res.statusCode,
        headers: res.headers,
        body: res.body,
        get json() {
          return JSON.parse(res.body);
        },
      };
    },
    async close() {
      await app.close();
      inventory.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface TestDaemon {
  daemon: Daemon;
  config: Config;
  url: string;
  stateDir: string;
  log: LogCapture;
  /** Stops the daemon (if the test has not) and removes the state directory. */
  cleanup(): Promise<void>;
}

/**
 * Starts the real daemon (startDaemon) on 127.0.0.1 with an ephemeral port and a temp stateDir.
 * `raw` is merged into the config before validation, e.g. { api: { token: '...' } }; a `stateDir`
 * given there is used as is and left in place by cleanup (a restart test owns it).
 */
export async function startTestDaemon(raw: Record<string, unknown> = {}): Promise<TestDaemon> {
  const ownDir = typeof raw.stateDir !== 'string';
  const stateDir = ownDir ? mkdtempSync(join(tmpdir(), 'hiveboot-daemon-')) : (raw.stateDir as string);
  const { http, stateDir: _given, ...rest } = raw as { http?: Record<string, unknown>; stateDir?: string };
  const config = validateConfig(
    // TFTP on a free loopback port, so test files running side by side never fight over port 69.
    { stateDir, log: { level: 'info' }, tftp: { listen: '127.0.0.1', port: 0 }, iscsi: { listen: '127.0.0.1', port: 0 }, ...rest, http: { listen: '127.0.0.1', port: 8080, ...http } },
    'test',
  );
  // Port 0 (an ephemeral port) is for tests only: the config schema rightly wants a real port.
  config.http.port = 0;
  const { logger, capture } = captureLogger(config.log.level);
  let daemon: Daemon;
  try {
    daemon = await startDaemon(config, { logger });
  } catch (err) {
    if (ownDir) rmSync(stateDir, { recursive: true, force: true });
    throw err;
  }
  return {
    daemon,
    config,
    url: daemon.url,
    stateDir,
    log: capture,
    async cleanup() {
      await daemon.stop();
      if (ownDir) rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/** Fixtures shared by the API tests. */
/** The daemon's REST API with its own token (read from its token file), as the CLI would call it. */
export function daemonApi(t: TestDaemon): (method: string, path: string, body?: unknown) => Promise<{ status: number; json: Record<string, unknown> }> {
  const token = readFileSync(t.daemon.apiTokenFile!, 'utf8').trim();
  return async (method, path, body) => {
    const res = await fetch(`${t.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };
}

export const MAC = '52:54:00:aa:bb:cc';
export const CHAP_USER = 'worker1-initiator';
export const CHAP_SECRET = 'Sup3rS3cretX1';
export const MUTUAL_USER = 'target-answers';
export const MUTUAL_SECRET = 'MutualS3cret2';
export const TARGET_IQN = 'iqn.2003-01.org.linux-iscsi.gw:worker-1';

export function diskInput(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { portals: ['192.0.2.10:3260'], targetIqn: TARGET_IQN, chapUser: CHAP_USER, chapSecret: CHAP_SECRET, ...extra };
}
