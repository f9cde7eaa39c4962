import type { FastifyPluginAsyncTypebox as FastifyPluginAsync } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ValidationError } from '../../../model/errors.js';
import { ProfileCreate, ProfileUpdate, ProfileView } from '../../../model/schemas.js';
import type { AppDeps } from '../../app.js';
import { errors, NameParams } from './common.js';

export const profileRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const profiles = deps.inventory.profiles;
  const checkTemplate = (template: string | undefined) => {
    if (template !== undefined && !deps.hasTemplate(template)) {
      throw new ValidationError(`template: no boot-templates/${template}.ipxe.hbs`, 'template');
    }
  };

  app.get(
    '/profiles',
    { schema: { tags: ['profiles'], summary: 'List profiles', response: { 200: Type.Object({ items: Type.Array(ProfileView) }), ...errors } } },
    async () => ({ items: profiles.list() }),
  );

  app.post(
    '/profiles',
    { schema: { tags: ['profiles'], summary: 'Create a profile', body: ProfileCreate, response: { 201: ProfileView, ...errors } } },
    async (req, reply) => {
      checkTemplate(req.body.template);
      return reply.status(201).send(profiles.create(req.body));
    },
  );

  app.get(
    '/profiles/:name',
    { schema: { tags: ['profiles'], summary: 'Show a profile', params: NameParams, response: { 200: ProfileView, ...errors } } },
    async (req) => profiles.get(req.params.name),
  );

  app.patch(
    '/profiles/:name',
    { schema: { tags: ['profiles'], summary: 'Change a profile', params: NameParams, body: ProfileUpdate, response: { 200: ProfileView, ...errors } } },
    async (req) => {
      checkTemplate(req.body.template);
      return profiles.update(req.params.name, req.body);
    },
  );

  app.delete(
    '/profiles/:name',
    { schema: { tags: ['profiles'], summary: 'Remove a profile no host uses', params: NameParams, response: { 204: Type.Null(), ...errors } } },
    async (req, reply) => {
      profiles.remove(req.params.name);
      return reply.status(204).send(null);
    },
  );
};
