import type { FastifyPluginAsyncTypebox as FastifyPluginAsync } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { EventView } from '../../../model/schemas.js';
import type { AppDeps } from '../../app.js';
import { errors } from './common.js';

export const eventRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  app.get(
    '/events',
    {
      schema: {
        tags: ['events'],
        summary: 'All machines’ events, newest first',
        querystring: Type.Object({
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })),
          before: Type.Optional(Type.Integer({ minimum: 1 })),
          stage: Type.Optional(Type.String({ maxLength: 64 })),
        }),
        response: { 200: Type.Object({ items: Type.Array(EventView), nextBefore: Type.Union([Type.Integer(), Type.Null()]) }), ...errors },
      },
    },
    async (req) => deps.inventory.events.all(req.query),
  );
};
