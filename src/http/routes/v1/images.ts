import type { FastifyPluginAsyncTypebox as FastifyPluginAsync } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ImageCreate, ImageView } from '../../../model/schemas.js';
import type { AppDeps } from '../../app.js';
import { errors, NameParams } from './common.js';

export const imageRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const images = deps.inventory.images;

  app.get(
    '/images',
    { schema: { tags: ['images'], summary: 'List images', response: { 200: Type.Object({ items: Type.Array(ImageView) }), ...errors } } },
    async () => ({ items: images.list() }),
  );

  app.post(
    '/images',
    { schema: { tags: ['images'], summary: 'Register a golden image', body: ImageCreate, response: { 201: ImageView, ...errors } } },
    async (req, reply) => reply.status(201).send(images.create(req.body)),
  );

  app.get(
    '/images/:name',
    { schema: { tags: ['images'], summary: 'Show an image', params: NameParams, response: { 200: ImageView, ...errors } } },
    async (req) => images.get(req.params.name),
  );

  app.delete(
    '/images/:name',
    { schema: { tags: ['images'], summary: 'Remove an image no profile uses', params: NameParams, response: { 204: Type.Null(), ...errors } } },
    async (req, reply) => {
      images.remove(req.params.name);
      return reply.status(204).send(null);
    },
  );
};
