import { Type } from 'typebox';

export const ErrorSchema = Type.Object({
  error: Type.String(),
  message: Type.String(),
  field: Type.Optional(Type.String()),
});

/** Error responses every route may give, for the OpenAPI document. */
export const errors = {
  400: ErrorSchema,
  401: ErrorSchema,
  404: ErrorSchema,
  409: ErrorSchema,
};

export const MacParams = Type.Object({ mac: Type.String({ maxLength: 32, description: 'MAC address, any common form' }) });
export const NameParams = Type.Object({ name: Type.String({ maxLength: 63 }) });
