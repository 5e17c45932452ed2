// Registry records (agents, API keys, tenants) and their validation: one schema serves the YAML
// file, `registry import`, the admin API and the Redis store.
import { z } from 'zod';
import { normalizeFingerprint } from '../credentials/fingerprint.js';
import { parseSpiffeIdUncached } from '../credentials/spiffe-id.js';

const id = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, 'letters, digits and . _ : - only');
const role = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, 'letters, digits and . _ : - only');
const timestamp = z.string().datetime({ offset: true });
const fingerprint = z.string().transform((v, ctx) => {
  const n = normalizeFingerprint(v);
  if (n === undefined) {
    ctx.addIssue({ code: 'custom', message: 'must be a SHA-256 fingerprint (64 hex chars)' });
    return z.NEVER;
  }
  return n;
});
const spiffeId = z
  .string()
  .refine((v) => parseSpiffeIdUncached(v).ok, 'must be a valid SPIFFE ID with a path');

export const AGENT_STATUSES = ['pending', 'approved', 'suspended', 'revoked'] as const;
export const KEY_SCOPES = ['admin', 'read', 'evaluate'] as const;
export const KEY_STATUSES = ['active', 'revoked'] as const;
export const CREDENTIAL_TYPES = ['pki', 'spiffe', 'jwt_oidc', 'conjur', 'api_key'] as const;

export const agentSchema = z
  .object({
    agent_id: id,
    tenant: id,
    display_name: z.string().max(256).optional(),
    agent_role: role,
    permitted_roles: z.array(role).optional(),
    status: z.enum(AGENT_STATUSES),
    credential_type: z.enum(CREDENTIAL_TYPES).optional(),
    spiffe_id: spiffeId.optional(),
    cert_fingerprint: fingerprint.optional(),
    cert_fingerprint_prev: fingerprint.optional(),
    cert_fingerprint_prev_expires_at: timestamp.optional(),
    oidc_issuer: z.string().min(1).optional(),
    oidc_subject: z.string().min(1).optional(),
    conjur_account: z.string().min(1).optional(),
    conjur_host_id: z.string().min(1).optional(),
    bound_key_id: id.optional(),
    created_at: timestamp.optional(),
    updated_at: timestamp.optional(),
  })
  .strict()
  .superRefine((a, ctx) => {
    if ((a.oidc_issuer === undefined) !== (a.oidc_subject === undefined))
      ctx.addIssue({
        code: 'custom',
        path: ['oidc_subject'],
        message: 'oidc_issuer and oidc_subject go together',
      });
    if ((a.conjur_account === undefined) !== (a.conjur_host_id === undefined))
      ctx.addIssue({
        code: 'custom',
        path: ['conjur_host_id'],
        message: 'conjur_account and conjur_host_id go together',
      });
    if (
      (a.cert_fingerprint_prev === undefined) !==
      (a.cert_fingerprint_prev_expires_at === undefined)
    )
      ctx.addIssue({
        code: 'custom',
        path: ['cert_fingerprint_prev_expires_at'],
        message: 'cert_fingerprint_prev needs cert_fingerprint_prev_expires_at (and the reverse)',
      });
  });

export const keySchema = z
  .object({
    key_id: id,
    tenant: id,
    label: z.string().max(256).optional(),
    scope: z.enum(KEY_SCOPES),
    digest: z.string().regex(/^[0-9a-f]{64}$/, 'must be the lowercase hex SHA-256 of the secret'),
    bound_agent_id: id.optional(),
    permitted_roles: z.array(role).optional(),
    status: z.enum(KEY_STATUSES).default('active'),
    expires_at: timestamp.optional(),
    created_at: timestamp.optional(),
    updated_at: timestamp.optional(),
  })
  .strict();

export const tenantSchema = z
  .object({
    tenant_id: id,
    require_agent_id: z.boolean().default(false),
    display_name: z.string().max(256).optional(),
    created_at: timestamp.optional(),
    updated_at: timestamp.optional(),
  })
  .strict();

export const registryFileSchema = z
  .object({
    tenants: z.array(tenantSchema).default([]),
    agents: z.array(agentSchema).default([]),
    keys: z.array(keySchema).default([]),
  })
  .strict();

export type Agent = Readonly<z.infer<typeof agentSchema>>;
export type ApiKey = Readonly<z.infer<typeof keySchema>>;
export type Tenant = Readonly<z.infer<typeof tenantSchema>>;
export type RegistryData = z.infer<typeof registryFileSchema>;

/** Roles the agent may act in: permitted_roles, or [agent_role] when unset. */
export function agentRoles(agent: Agent): readonly string[] {
  return agent.permitted_roles ?? [agent.agent_role];
}

/** Formats zod issues as one line per problem, e.g. "agents[2].spiffe_id: must be ...". */
export function describeIssues(error: z.ZodError, prefix = ''): string[] {
  return error.issues.map((i) => {
    const path = i.path
      .map((p, n) => (typeof p === 'number' ? `[${p}]` : n === 0 ? String(p) : `.${String(p)}`))
      .join('');
    return `${prefix}${path === '' ? '' : path + ': '}${i.message}`;
  });
}
