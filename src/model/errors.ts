/**
 * Domain errors. Every layer throws these; the HTTP layer maps them to status codes and the CLI to a
 * one-line reason. `field` names the offending input so a user knows what to fix.
 */
export class DomainError extends Error {
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Input that can never be accepted as given (HTTP 400). */
export class ValidationError extends DomainError {}

/** The named thing does not exist (HTTP 404). */
export class NotFoundError extends DomainError {}

/** The input clashes with what is stored, e.g. a duplicate MAC or hostname (HTTP 409). */
export class ConflictError extends DomainError {}
