import type { FastifyPluginAsyncTypebox as FastifyPluginAsync } from '@fastify/type-provider-typebox';
import type { AppDeps } from '../../app.js';
import { bearerAuth } from '../../auth.js';
import { discoverRoutes } from './discover.js';
import { eventRoutes } from './events.js';
import { hostRoutes } from './hosts.js';
import { imageRoutes } from './images.js';
import { profileRoutes } from './profiles.js';
import { selfRoutes } from './self.js';

/** /v1: the REST API. Everything needs the bearer token except /v1/discover (firmware) and /v1/hosts/self/* (booted hosts). */
export const apiRoutes: FastifyPluginAsync<AppDeps> = async (app, opts) => {
  // The prefix option belongs to this plugin only; children get the plain dependencies.
  const { prefix: _prefix, ...deps } = opts as AppDeps & { prefix?: string };
  await app.register(discoverRoutes, deps);
  // Booted hosts have no token: they are identified by address and iSCSI session (see self.ts).
  await app.register(selfRoutes, deps);
  await app.register(async (authed) => {
    authed.addHook('onRequest', bearerAuth(deps.apiToken));
    await authed.register(hostRoutes, deps);
    await authed.register(profileRoutes, deps);
    await authed.register(imageRoutes, deps);
    await authed.register(eventRoutes, deps);
  });
};
