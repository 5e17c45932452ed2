// The contract every credential kind implements: find itself in the request facts, verify itself,
// and say which registry lookup names its agent. One file per kind; credentials/index.ts orders them.
import type { IdentityMethod } from '../check/decision.js';
import type { RequestFacts } from '../check/facts.js';
import type { DenyReason } from '../check/reasons.js';
import type { Agent, ApiKey } from '../registry/records.js';
import type { AgentLookup } from '../registry/registry.js';

export type CredentialResult =
  /** Not in this request: try the next kind. */
  | { readonly status: 'absent' }
  /** Present but invalid (bad signature, expired, malformed, untrusted): deny at once. */
  | { readonly status: 'invalid'; readonly reason: DenyReason }
  /** Could not be verified because a dependency is down: deny 503. */
  | { readonly status: 'unavailable'; readonly reason: DenyReason }
  /** Verified; the agent is whoever `lookup` finds (if `accept` agrees). */
  | {
      readonly status: 'verified';
      readonly method: IdentityMethod;
      readonly lookup: AgentLookup;
      /** A non-secret reference for audit: fingerprint, SPIFFE ID, issuer+subject, Conjur host. */
      readonly credentialRef: string;
      /** Extra match rule on the found record, e.g. a previous fingerprint's grace deadline. */
      readonly accept?: (agent: Agent, nowMs: number) => boolean;
    }
  /** A valid API key (scope, status and expiry already checked); the pipeline binds it. */
  | { readonly status: 'api_key'; readonly key: ApiKey };

export interface CredentialVerifier {
  readonly kind: 'pki' | 'spiffe' | 'jwt_oidc' | 'conjur' | 'api_key';
  verify(facts: RequestFacts, nowMs: number): CredentialResult | Promise<CredentialResult>;
  close?(): Promise<void> | void;
}

export const ABSENT: CredentialResult = Object.freeze({ status: 'absent' });

export function invalid(reason: DenyReason): CredentialResult {
  return { status: 'invalid', reason };
}
