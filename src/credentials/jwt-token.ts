// Where a JWT sits in a request, and the verified-token cache that makes a repeated token cost one
// SHA-256 instead of a signature check. The cache holds results, never the token itself.
import { sha256 } from '../util/sha256.js';
import { LRUCache } from 'lru-cache';
import type { CredentialResult } from './credential.js';

// Compact JWS: three base64url parts. The signature may be empty so that `alg: none` tokens are
// recognised as JWTs (and rejected) rather than handed to a weaker credential kind.
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const BEARER = /^Bearer +([^\s]+)$/i;

/** Longer tokens are rejected before any decoding: no IdP issues JWTs this large. */
export const MAX_TOKEN_LENGTH = 16 * 1024;

/** Default upper bound on how long a verified token is trusted without re-verifying it. */
export const DEFAULT_TOKEN_CACHE_TTL_MS = 5 * 60_000;

export function looksLikeCompactJws(value: string): boolean {
  return COMPACT_JWS.test(value);
}

/**
 * The JWT this request carries: `x-agent-token` when it is a compact JWS, else the bearer token
 * of `authorization` when that is one. A non-JWT `x-agent-token` is left for Conjur.
 */
export function findJwt(headers: ReadonlyMap<string, string>): string | undefined {
  const agentToken = headers.get('x-agent-token');
  if (agentToken !== undefined && looksLikeCompactJws(agentToken)) return agentToken;
  const authorization = headers.get('authorization');
  if (authorization === undefined) return undefined;
  const bearer = BEARER.exec(authorization)?.[1];
  return bearer !== undefined && looksLikeCompactJws(bearer) ? bearer : undefined;
}

/** SHA-256 of a token: the only form in which a token is ever kept in memory past the request. */
export function tokenDigest(token: string): string {
  return sha256(token, 'base64url');
}

interface Entry {
  readonly result: CredentialResult;
  readonly expiresAtMs: number;
}

/**
 * Verified results keyed by token digest. An entry lives until min(exp, verifiedAt + ttl): never
 * past the token's own expiry, and never longer than ttl so that a key the IdP withdraws stops
 * vouching for cached tokens within one ttl. Bounded LRU, so a flood of distinct valid tokens
 * evicts rather than grows.
 */
export class VerifiedTokenCache {
  private readonly lru: LRUCache<string, Entry> | undefined;

  constructor(
    maxEntries: number,
    private readonly ttlMs: number,
  ) {
    this.lru = maxEntries > 0 ? new LRUCache<string, Entry>({ max: maxEntries }) : undefined;
  }

  get(token: string, nowMs: number): CredentialResult | undefined {
    if (this.lru === undefined) return undefined;
    const key = tokenDigest(token);
    const entry = this.lru.get(key);
    if (entry === undefined) return undefined;
    // Expiry is checked against the caller's clock on every hit, with no skew allowance.
    if (nowMs >= entry.expiresAtMs) {
      this.lru.delete(key);
      return undefined;
    }
    return entry.result;
  }

  /** `expSeconds` is the token's verified `exp` claim (NumericDate). */
  set(token: string, result: CredentialResult, expSeconds: number, nowMs: number): void {
    if (this.lru === undefined) return;
    const expiresAtMs = Math.min(expSeconds * 1000, nowMs + this.ttlMs);
    if (expiresAtMs <= nowMs) return;
    this.lru.set(tokenDigest(token), { result, expiresAtMs });
  }

  get size(): number {
    return this.lru?.size ?? 0;
  }

  clear(): void {
    this.lru?.clear();
  }
}
