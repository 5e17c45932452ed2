// Errors of the admin API and CLI. Each carries a stable `code` (the JSON `error` field, what
// tests and scripts switch on) and the HTTP status it maps to; messages are for people only and
// never contain a secret.
import { RegistryUnavailableError, RegistryWriteError } from '../registry/registry.js';

export type AdminErrorCode =
  | 'invalid_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'method_not_allowed'
  | 'already_exists'
  | 'conflict'
  | 'invalid_transition'
  | 'tenant_in_use'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'registry_unavailable'
  | 'internal';

const STATUS: Record<AdminErrorCode, number> = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  already_exists: 409,
  conflict: 409,
  invalid_transition: 409,
  tenant_in_use: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  registry_unavailable: 503,
  internal: 500,
};

/** Every code, for the OpenAPI document test. */
export const ADMIN_ERROR_CODES = Object.keys(STATUS) as AdminErrorCode[];

export class AdminError extends Error {
  constructor(
    readonly code: AdminErrorCode,
    message: string,
    /** One line per problem for invalid_request, e.g. "spiffe_id: must be a valid SPIFFE ID". */
    readonly problems: readonly string[] = [],
  ) {
    super(message);
  }

  get status(): number {
    return STATUS[this.code];
  }

  toJSON(): { error: AdminErrorCode; message: string; problems?: readonly string[] } {
    return this.problems.length > 0
      ? { error: this.code, message: this.message, problems: this.problems }
      : { error: this.code, message: this.message };
  }
}

export function invalidRequest(problems: readonly string[]): AdminError {
  return new AdminError(
    'invalid_request',
    `${problems.length} problem(s) in the request`,
    problems,
  );
}

/** Maps store errors onto admin errors; anything unexpected becomes `internal` (a bug). */
export function toAdminError(err: unknown): AdminError {
  if (err instanceof AdminError) return err;
  if (err instanceof RegistryWriteError) {
    if (err.code === 'not_found') return new AdminError('not_found', err.message);
    if (err.code === 'invalid') return invalidRequest([err.message]);
    return new AdminError('conflict', err.message);
  }
  if (err instanceof RegistryUnavailableError)
    return new AdminError(
      'registry_unavailable',
      'the registry cannot be written right now; retry',
    );
  return new AdminError('internal', 'internal error');
}
