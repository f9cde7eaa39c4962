import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { TypeBoxValidatorCompiler, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { BootService } from '../boot/service.js';
import type { Inventory } from '../inventory/index.js';
import type { Metrics } from '../metrics.js';
import type { HostStorage } from '../storage/service.js';
import type { FileStore } from '../tftp/files.js';
import { errorHandler, errorBody } from './errors.js';
import { bootRoutes } from './routes/boot.js';
import { healthRoutes } from './routes/health.js';
import { netbootRoutes } from './routes/netboot.js';
import { apiRoutes } from './routes/v1/index.js';

export interface AppDeps {
  inventory: Inventory;
  boot: BootService;
  metrics: Metrics;
  apiToken: string;
  logger: Logger;
  /** Fixed base URL for boot scripts; otherwise derived from each request's Host header. */
  publicUrl?: string;
  defaultProfile: string;
  bodyLimitBytes?: number;
  hasTemplate: (name: string) => boolean;
  version: string;
  /** The TFTP root, also served at /netboot/ for HTTP boot. */
  netboot?: FileStore;
  /** Disk provisioning and the built-in target; absent when hiveboot does not manage disks. */
  storage?: HostStorage;
  /** What booted hosts are told to join. */
  k3s?: { serverUrl?: string; tokenFile?: string };
  /**
   * Whether every listener (iSCSI, TFTP, DHCP) is up; /healthz answers 503 "starting" until then.
   * HTTP listens first (what the others hand out points at it), so it is up before it is ready.
   */
  ready?: () => boolean;
}

export type App = FastifyInstance<any, any, any, Logger, TypeBoxTypeProvider>;

/**
 * The fastify application as a plain function of its dependencies: no listening, no process
 * concerns (those are daemon.ts's), so tests build it and use inject or listen on 127.0.0.1.
 */
export async function buildApp(deps: AppDeps): Promise<App> {
  const app = Fastify({
    loggerInstance: deps.logger,
    bodyLimit: deps.bodyLimitBytes ?? 1024 * 1024,
    trustProxy: false,
    // iPXE sends "GET /boot/52:54:00:aa:bb:cc.ipxe"; keep ':' in paths as sent.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    // Malformed URLs (bad percent-encoding...) get the same error shape as everything else.
    frameworkErrors: (err, _req, reply: FastifyReply) => {
      const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400;
      void reply.status(status).send(errorBody(status, err.message));
    },
  }).withTypeProvider<TypeBoxTypeProvider>();
  // TypeBox validates: bodies exactly as sent (no type coercion, unknown fields refused), while
  // query strings and path parameters are converted from text first.
  app.setValidatorCompiler(TypeBoxValidatorCompiler);
  // The API takes JSON (and /v1/discover forms): a text/plain body is 415, not a string to validate.
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send(errorBody(404, `no route ${req.method} ${req.url.split('?')[0]}`));
  });

  // Once close() has begun, requests still in flight are answered with "Connection: close": a socket
  // kept alive after its answer would hold close() (so a SIGTERM) until keepAliveTimeout (72 s).
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (_req, reply) => {
    if (closing) void reply.header('connection', 'close');
  });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    deps.metrics.httpRequests.inc({ method: req.method, route, status: String(reply.statusCode) });
    deps.metrics.httpDuration.observe({ route }, reply.elapsedTime / 1000);
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'hiveboot', version: deps.version, description: 'Network boot for diskless clusters: hosts, profiles, images and their boot timeline.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
      tags: [
        { name: 'hosts', description: 'Machines, by MAC' },
        { name: 'profiles', description: 'What a host boots' },
        { name: 'images', description: 'Golden images' },
        { name: 'events', description: 'The boot timeline' },
        { name: 'boot', description: 'Served to firmware; no token' },
      ],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  await app.register(healthRoutes, deps);
  await app.register(bootRoutes, deps);
  await app.register(netbootRoutes, deps);
  await app.register(apiRoutes, { ...deps, prefix: '/v1' });
  return app as unknown as App;
}

/** The base URL a machine reached us on, for links in its script. */
export function baseUrlOf(req: { protocol: string; host: string }, publicUrl?: string): string {
  if (publicUrl) return publicUrl.replace(/\/+$/, '');
  return `${req.protocol}://${req.host}`;
}
