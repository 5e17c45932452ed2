// A decision is data: an allow with the verified identity, or a deny with a reason code.
import type { DenyReason } from './reasons.js';

export const IDENTITY_METHODS = [
  'pki',
  'spiffe',
  'jwt_oidc',
  'conjur',
  'key_bound',
  'self_declared',
] as const;
export type IdentityMethod = (typeof IDENTITY_METHODS)[number];

export interface Identity {
  readonly agentId: string;
  readonly tenant: string;
  readonly role: string;
  readonly method: IdentityMethod;
  /** Key id or certificate fingerprint or subject: never a secret. */
  readonly credentialRef: string;
}

export interface Allow {
  readonly allowed: true;
  readonly identity: Identity;
}

export interface Deny {
  readonly allowed: false;
  readonly reason: DenyReason;
  /** Whatever was learned before the deny (for audit and metadata); never a secret. */
  readonly partial?: Partial<Identity>;
}

export type Decision = Allow | Deny;

export function deny(reason: DenyReason, partial?: Partial<Identity>): Deny {
  return partial === undefined ? { allowed: false, reason } : { allowed: false, reason, partial };
}
