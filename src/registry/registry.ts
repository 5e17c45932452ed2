// The registry interface: lookups the check path needs, and writes the admin API and CLI need.
// Redis and the embedded YAML file store implement it; the cache decorates it.
import canonicalize from 'canonicalize';
import type { Agent, ApiKey, RegistryData, Tenant } from './records.js';

/** How a credential names its agent; each is an index in the store. */
export type AgentLookup =
  | { readonly by: 'id'; readonly value: string }
  | { readonly by: 'spiffe'; readonly value: string }
  | { readonly by: 'fingerprint'; readonly value: string }
  | { readonly by: 'oidc'; readonly issuer: string; readonly subject: string }
  | { readonly by: 'conjur'; readonly account: string; readonly hostId: string };

export function lookupKey(l: AgentLookup): string {
  switch (l.by) {
    case 'oidc':
      return `oidc:${l.issuer}\u0000${l.subject}`;
    case 'conjur':
      return `conjur:${l.account}\u0000${l.hostId}`;
    default:
      return `${l.by}:${l.value}`;
  }
}

/** Every lookup that finds this agent: by id first, then each credential index. */
export function agentLookups(a: Agent): AgentLookup[] {
  const out: AgentLookup[] = [{ by: 'id', value: a.agent_id }];
  if (a.spiffe_id !== undefined) out.push({ by: 'spiffe', value: a.spiffe_id });
  if (a.cert_fingerprint !== undefined) out.push({ by: 'fingerprint', value: a.cert_fingerprint });
  if (a.cert_fingerprint_prev !== undefined)
    out.push({ by: 'fingerprint', value: a.cert_fingerprint_prev });
  if (a.oidc_issuer !== undefined && a.oidc_subject !== undefined)
    out.push({ by: 'oidc', issuer: a.oidc_issuer, subject: a.oidc_subject });
  if (a.conjur_account !== undefined && a.conjur_host_id !== undefined)
    out.push({ by: 'conjur', account: a.conjur_account, hostId: a.conjur_host_id });
  return out;
}

/** Every cache key under which an agent can be found (used to invalidate caches on writes). */
export function agentLookupKeys(a: Agent): string[] {
  return agentLookups(a).map(lookupKey);
}

export type Invalidation = string[] | 'all' | 'revalidate';

/** A value now, or later. The cache answers a fresh hit synchronously, so a check that only hits
 * is decided without a promise or a trip through the microtask queue. */
export type MaybePromise<T> = T | Promise<T>;

export interface RegistryReader {
  findAgent(lookup: AgentLookup): MaybePromise<Agent | undefined>;
  getKey(keyId: string): MaybePromise<ApiKey | undefined>;
  getTenant(tenantId: string): MaybePromise<Tenant | undefined>;
}

/** Thrown by a store when it cannot answer (Redis down, timeout): the check denies 503. */
export class RegistryUnavailableError extends Error {
  readonly code = 'registry_unavailable';
}

/** Thrown by writes for conflicts and bad references: the admin API answers 409/400. */
export class RegistryWriteError extends Error {
  constructor(
    readonly code: 'conflict' | 'not_found' | 'invalid',
    message: string,
  ) {
    super(message);
  }
}

export interface RegistryStore extends RegistryReader {
  readonly kind: 'redis' | 'embedded';
  // A store always answers through its backend, asynchronously.
  findAgent(lookup: AgentLookup): Promise<Agent | undefined>;
  getKey(keyId: string): Promise<ApiKey | undefined>;
  getTenant(tenantId: string): Promise<Tenant | undefined>;
  /**
   * Writes an agent with its indexes atomically. With `expected`, the write happens only if the
   * stored record still equals it (`null`: does not exist) — so a change built from an old read
   * can never undo a concurrent revocation.
   */
  putAgent(agent: Agent, expected?: Agent | null): Promise<void>;
  deleteAgent(agentId: string): Promise<boolean>;
  putKey(key: ApiKey): Promise<void>;
  deleteKey(keyId: string): Promise<boolean>;
  putTenant(tenant: Tenant): Promise<void>;
  deleteTenant(tenantId: string): Promise<boolean>;
  listAgents(): Promise<Agent[]>;
  listKeys(): Promise<ApiKey[]>;
  listTenants(): Promise<Tenant[]>;
  /** Replace or merge a whole registry file atomically. */
  importData(data: RegistryData, opts: { replace: boolean }): Promise<void>;
  /** Resolves when the store can answer lookups; false when it cannot right now. */
  ready(): boolean;
  /** Subscribe to invalidations: called with lookup keys that changed, or 'all'. */
  /**
   * Subscribe to invalidations: lookup keys that changed, 'all' (flush), or 'revalidate' (every
   * entry must be re-read before it is trusted again, but may still be served within the
   * staleness bound if the store cannot answer — used when the invalidation channel is lost).
   */
  onInvalidate(listener: (keys: Invalidation) => void): void;
  close(): Promise<void>;
}

/** Compare-and-set check shared by the stores: does the stored record match what the caller read? */
export function matchesExpected(
  current: Agent | undefined,
  expected: Agent | null | undefined,
): boolean {
  if (expected === undefined) return true;
  if (expected === null) return current === undefined;
  return current !== undefined && canonicalize(current) === canonicalize(expected);
}

export function concurrentChange(agentId: string): RegistryWriteError {
  return new RegistryWriteError(
    'conflict',
    `agent ${agentId} was changed concurrently; read it again and retry`,
  );
}
