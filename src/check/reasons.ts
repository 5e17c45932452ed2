// The closed set of decision reasons: the same strings appear in the response header, the metric
// label, the audit event, the README table and the tests.

export const REASONS = {
  allowed: { http: 200, grpc: 0, message: 'allowed' },
  no_credentials: { http: 401, grpc: 16, message: 'no credential was presented' },
  malformed_header: {
    http: 401,
    grpc: 16,
    message: 'an identity header is repeated or contains control characters',
  },
  malformed_request: { http: 401, grpc: 16, message: 'the check request could not be decoded' },
  invalid_api_key: { http: 401, grpc: 16, message: 'the API key is not valid' },
  key_scope_insufficient: {
    http: 403,
    grpc: 7,
    message: 'the API key scope does not allow this call',
  },
  invalid_token: { http: 401, grpc: 16, message: 'the token is not valid' },
  untrusted_issuer: { http: 401, grpc: 16, message: 'the credential issuer is not trusted' },
  invalid_spiffe_id: { http: 401, grpc: 16, message: 'the SPIFFE ID is malformed' },
  untrusted_trust_domain: {
    http: 401,
    grpc: 16,
    message: 'the SPIFFE trust domain is not trusted',
  },
  certificate_invalid: { http: 401, grpc: 16, message: 'the client certificate is not acceptable' },
  certificate_expired: {
    http: 401,
    grpc: 16,
    message: 'the client certificate is outside its validity window',
  },
  certificate_retired: {
    http: 401,
    grpc: 16,
    message: 'the client certificate was rotated out and its grace period is over',
  },
  agent_id_mismatch: {
    http: 403,
    grpc: 7,
    message: 'x-agent-id names a different agent than the credential',
  },
  agent_id_required: { http: 401, grpc: 16, message: 'x-agent-id is required' },
  key_agent_binding: {
    http: 403,
    grpc: 7,
    message: 'the API key and the agent are not bound to each other',
  },
  key_role_restriction: { http: 403, grpc: 7, message: 'the API key does not permit this role' },
  agent_not_registered: {
    http: 403,
    grpc: 7,
    message: 'no registered agent matches the credential',
  },
  agent_not_approved: { http: 403, grpc: 7, message: 'the agent is not approved' },
  role_not_permitted: { http: 403, grpc: 7, message: 'the agent may not act in this role' },
  registry_unavailable: { http: 503, grpc: 14, message: 'the agent registry is unavailable' },
  identity_provider_unavailable: {
    http: 503,
    grpc: 14,
    message: 'the identity provider is unavailable',
  },
  overloaded: { http: 503, grpc: 14, message: 'the authorizer is overloaded' },
  decision_timeout: {
    http: 503,
    grpc: 14,
    message: 'the decision did not complete within its time budget',
  },
  internal_error: { http: 503, grpc: 14, message: 'the authorizer failed to decide' },
} as const;

export type Reason = keyof typeof REASONS;
export type DenyReason = Exclude<Reason, 'allowed'>;

export const ALL_REASONS = Object.keys(REASONS) as Reason[];

export function isReason(value: string): value is Reason {
  return Object.hasOwn(REASONS, value);
}
