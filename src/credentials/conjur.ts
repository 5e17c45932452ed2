// Credential 4, `conjur`: a non-JWT `x-agent-token` is a Conjur access token; Conjur's own
// `GET /whoami` says which host it belongs to. Results are cached by token digest, never by token.
import { LRUCache } from 'lru-cache';
import type { RequestFacts } from '../check/facts.js';
import type { Config } from '../config/config.js';
import { ABSENT, invalid, type CredentialResult, type CredentialVerifier } from './credential.js';
import { parseJsonObject, type IdpMetrics, type WarnLogger } from './jwks-cache.js';
import { MAX_TOKEN_LENGTH, looksLikeCompactJws, tokenDigest } from './jwt-token.js';

export interface ConjurVerifierOptions {
  /** Conjur appliance URL, e.g. https://conjur.example.com (the verifier exists only when set). */
  readonly url: string;
  readonly timeoutMs: number;
  readonly cacheTtlMs: number;
  readonly cacheMaxEntries: number;
  readonly metrics?: IdpMetrics | undefined;
  readonly logger?: WarnLogger | undefined;
}

// Conjur access tokens live 8 minutes. A cache entry must die before the token does, so the TTL is
// clamped below that and an entry never outlives token_issued_at + 8 min when Conjur reports it.
export const CONJUR_TOKEN_LIFE_MS = 8 * 60_000;
const MAX_CACHE_TTL_MS = 7 * 60_000;
const HOST_PREFIX = 'host/';

const UNAVAILABLE: CredentialResult = Object.freeze({
  status: 'unavailable',
  reason: 'identity_provider_unavailable',
});

interface Entry {
  readonly result: CredentialResult;
  readonly expiresAtMs: number;
}

export class ConjurVerifier implements CredentialVerifier {
  readonly kind = 'conjur';
  private readonly whoamiUrl: string;
  private readonly ttlMs: number;
  private readonly cache: LRUCache<string, Entry>;
  /** One whoami call per distinct token however many requests carry it at once. */
  private readonly inFlight = new Map<string, Promise<CredentialResult>>();

  constructor(private readonly opts: ConjurVerifierOptions) {
    this.whoamiUrl = `${opts.url.replace(/\/+$/, '')}/whoami`;
    this.ttlMs = Math.min(Math.max(opts.cacheTtlMs, 0), MAX_CACHE_TTL_MS);
    this.cache = new LRUCache<string, Entry>({ max: Math.max(opts.cacheMaxEntries, 1) });
  }

  /** Undefined when conjur_url is not configured: the kind is then switched off. */
  static fromConfig(
    config: Config,
    deps: { metrics?: IdpMetrics; logger?: WarnLogger } = {},
  ): ConjurVerifier | undefined {
    if (config.conjur_url === undefined) return undefined;
    return new ConjurVerifier({
      url: config.conjur_url,
      timeoutMs: config.conjur_timeout,
      cacheTtlMs: config.conjur_cache_ttl,
      cacheMaxEntries: Math.max(config.token_cache_max_entries, 1),
      metrics: deps.metrics,
      logger: deps.logger,
    });
  }

  close(): void {
    this.cache.clear();
  }

  verify(facts: RequestFacts, nowMs: number): CredentialResult | Promise<CredentialResult> {
    const token = facts.headers.get('x-agent-token');
    // A JWT belongs to the jwt_oidc kind; sending it to Conjur would leak it to a second party.
    if (token === undefined || token === '' || looksLikeCompactJws(token)) return ABSENT;
    if (token.length > MAX_TOKEN_LENGTH) return invalid('invalid_token');
    const digest = tokenDigest(token);
    const hit = this.cache.get(digest);
    if (hit !== undefined) {
      if (nowMs < hit.expiresAtMs) return hit.result;
      this.cache.delete(digest);
    }
    let pending = this.inFlight.get(digest);
    if (pending === undefined) {
      pending = this.whoami(token, digest, nowMs).finally(() => this.inFlight.delete(digest));
      this.inFlight.set(digest, pending);
    }
    return pending;
  }

  private async whoami(token: string, digest: string, nowMs: number): Promise<CredentialResult> {
    const started = performance.now();
    let outcome: 'ok' | 'error' | 'timeout' = 'error';
    let res: Response;
    let body: ArrayBuffer;
    try {
      res = await fetch(this.whoamiUrl, {
        headers: {
          // Conjur's token header carries the raw access token base64-encoded.
          authorization: `Token token="${Buffer.from(token, 'utf8').toString('base64')}"`,
          accept: 'application/json',
        },
        redirect: 'manual',
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
      body = await res.arrayBuffer();
      outcome = res.status === 200 || res.status === 401 || res.status === 403 ? 'ok' : 'error';
    } catch (err) {
      if (err instanceof Error && err.name === 'TimeoutError') outcome = 'timeout';
      this.warn(outcome === 'timeout' ? 'timeout' : 'network');
      return UNAVAILABLE;
    } finally {
      this.opts.metrics?.idpCalls.inc({ provider: 'conjur', result: outcome });
      this.opts.metrics?.idpDuration.observe(
        { provider: 'conjur' },
        (performance.now() - started) / 1000,
      );
    }
    // Conjur refuses an expired, forged or unknown token with 401 (403 on some proxies).
    if (res.status === 401 || res.status === 403) return invalid('invalid_token');
    if (res.status !== 200) {
      // 5xx, 404 (a wrong conjur_url) and redirects are Conjur's or our problem, not the agent's.
      this.warn('http_status', res.status);
      return UNAVAILABLE;
    }
    const doc = parseJsonObject(body);
    const account = doc?.account;
    const username = doc?.username;
    if (typeof account !== 'string' || account === '' || typeof username !== 'string') {
      this.warn('bad_body');
      return UNAVAILABLE;
    }
    // Agents are Conjur hosts. A user's token (`username` without `host/`) is a human
    // identity and never names an agent, so it is refused rather than looked up.
    if (!username.startsWith(HOST_PREFIX) || username.length === HOST_PREFIX.length)
      return invalid('invalid_token');
    const hostId = username.slice(HOST_PREFIX.length);
    const result: CredentialResult = {
      status: 'verified',
      method: 'conjur',
      lookup: { by: 'conjur', account, hostId },
      credentialRef: `${account}:host:${hostId}`,
    };
    this.remember(digest, result, nowMs, doc?.token_issued_at);
    return result;
  }

  private remember(
    digest: string,
    result: CredentialResult,
    nowMs: number,
    issuedAt: unknown,
  ): void {
    let expiresAtMs = nowMs + this.ttlMs;
    const issued = typeof issuedAt === 'string' ? Date.parse(issuedAt) : Number.NaN;
    if (Number.isFinite(issued)) expiresAtMs = Math.min(expiresAtMs, issued + CONJUR_TOKEN_LIFE_MS);
    if (expiresAtMs > nowMs) this.cache.set(digest, { result, expiresAtMs });
  }

  private warn(code: string, status?: number): void {
    this.opts.logger?.warn({ provider: 'conjur', code, status }, 'Conjur whoami failed');
  }
}
