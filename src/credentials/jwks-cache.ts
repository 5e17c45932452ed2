// One issuer's JSON Web Key Set: fetched by us (not jose's remote set) so that staleness is bounded
// by jwks_max_stale, request-path fetches are single-flight and limited to one per cool-down, and
// an identity provider outage becomes a typed "unavailable" instead of a raw fetch error.
import { createLocalJWKSet, errors, type JSONWebKeySet } from 'jose';
import type { FlattenedJWSInput, JWSHeaderParameters } from 'jose';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

export type IdpMetrics = Pick<Metrics, 'idpCalls' | 'idpDuration'>;
export type WarnLogger = Pick<Logger, 'warn'>;

type LocalKeySet = ReturnType<typeof createLocalJWKSet>;
type VerifyKey = Awaited<ReturnType<LocalKeySet>>;

export interface JwksCacheOptions {
  readonly issuer: string;
  /** Exactly one of jwksUrl / discoveryUrl (config validation guarantees it). */
  readonly jwksUrl?: string | undefined;
  readonly discoveryUrl?: string | undefined;
  readonly refreshIntervalMs: number;
  readonly maxStaleMs: number;
  readonly cooldownMs: number;
  readonly timeoutMs: number;
  readonly metrics?: IdpMetrics | undefined;
  readonly logger?: WarnLogger | undefined;
  /** Clock for staleness and cool-down; injectable for tests. */
  readonly now?: (() => number) | undefined;
}

/** Thrown by getKey when no key set fresh enough can be had: the check answers 503. */
export class JwksUnavailableError extends Error {
  readonly code = 'identity_provider_unavailable';
  constructor(readonly issuer: string) {
    super('the JWKS for this issuer is unavailable');
  }
}

/** Why one fetch failed; the message names the URL kind and status, never a body or key. */
export class IdpFetchError extends Error {
  constructor(
    readonly code: 'timeout' | 'network' | 'http_status' | 'bad_body' | 'issuer_mismatch',
    message: string,
  ) {
    super(message);
  }
}

// A JWKS or discovery document larger than this is not one we want to parse on the hot path.
const MAX_BODY_BYTES = 512 * 1024;
// After a failed background refresh, retry sooner than the full interval, but not in a tight loop.
const MIN_RETRY_MS = 1000;

export class JwksCache {
  private keySet: LocalKeySet | undefined;
  private lastSuccessAt = Number.NEGATIVE_INFINITY;
  private lastFetchAt = Number.NEGATIVE_INFINITY;
  private pending: Promise<boolean> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly now: () => number;

  constructor(private readonly opts: JwksCacheOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Fetches now and then every refresh interval in the background; the timer never holds the process. */
  start(): void {
    if (this.timer !== undefined || this.closed) return;
    const tick = (): void => {
      void this.refresh().then((ok) => {
        if (this.closed) return;
        const next = ok
          ? this.opts.refreshIntervalMs
          : Math.min(this.opts.refreshIntervalMs, Math.max(this.opts.cooldownMs, MIN_RETRY_MS));
        this.timer = setTimeout(tick, next);
        this.timer.unref();
      });
    };
    // Keys fetched moments ago (a start-up warm-up) need no second fetch straight away.
    const fresh = this.now() - this.lastSuccessAt < this.opts.refreshIntervalMs;
    this.timer = setTimeout(tick, fresh ? this.opts.refreshIntervalMs : 0);
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Milliseconds since the epoch of the last successful fetch, or -Infinity. */
  get lastSuccess(): number {
    return this.lastSuccessAt;
  }

  /**
   * Key resolver for jose's jwtVerify. Throws JwksUnavailableError when the keys are missing or
   * older than max-stale and a fetch cannot fix that, and jose's JWKSNoMatchingKey for a kid that
   * is still unknown after the one refetch the cool-down allows.
   */
  readonly getKey = async (
    header: JWSHeaderParameters,
    token: FlattenedJWSInput,
  ): Promise<VerifyKey> => {
    let keys = this.usableKeys();
    if (keys === undefined) {
      await this.refreshIfAllowed();
      keys = this.usableKeys();
      if (keys === undefined) throw new JwksUnavailableError(this.opts.issuer);
    }
    try {
      return await keys(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
      // An unknown kid may be a rotation we have not seen yet; anyone can mint such tokens, so
      // the refetch is single-flight and rate-limited by the cool-down.
      const attempted = await this.refreshIfAllowed();
      if (attempted === undefined) throw err;
      if (!attempted) throw new JwksUnavailableError(this.opts.issuer);
      keys = this.usableKeys();
      if (keys === undefined) throw new JwksUnavailableError(this.opts.issuer);
      return keys(header, token);
    }
  };

  /** Single-flight fetch; resolves true when new keys were installed. Never rejects. */
  refresh(): Promise<boolean> {
    this.pending ??= this.fetchOnce().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private usableKeys(): LocalKeySet | undefined {
    // Serving keys older than max-stale would hide a key revocation at the IdP for too long.
    if (this.now() - this.lastSuccessAt > this.opts.maxStaleMs) return undefined;
    return this.keySet;
  }

  /** Joins an in-flight fetch, or starts one if the cool-down has passed; undefined if neither. */
  private refreshIfAllowed(): Promise<boolean> | undefined {
    if (this.pending !== undefined) return this.pending;
    if (this.now() - this.lastFetchAt < this.opts.cooldownMs) return undefined;
    return this.refresh();
  }

  private async fetchOnce(): Promise<boolean> {
    this.lastFetchAt = this.now();
    try {
      const url = this.opts.jwksUrl ?? (await this.discoverJwksUri());
      const body = await this.getJson(url, 'jwks');
      // createLocalJWKSet validates the set; it only ever yields public signature keys.
      const keySet = createLocalJWKSet(body as unknown as JSONWebKeySet);
      this.keySet = keySet;
      this.lastSuccessAt = this.now();
      return true;
    } catch (err) {
      this.opts.logger?.warn(
        {
          issuer: this.opts.issuer,
          code: err instanceof IdpFetchError ? err.code : 'invalid_jwks',
          error: err instanceof Error ? err.message : String(err),
        },
        'JWKS refresh failed; serving the last good keys until max-stale',
      );
      return false;
    }
  }

  private async discoverJwksUri(): Promise<string> {
    const doc = await this.getJson(this.opts.discoveryUrl ?? '', 'oidc_discovery');
    // OpenID Connect Discovery §4.3: the document must name exactly the issuer we trust, or an
    // attacker-controlled document could point us at keys for someone else's tokens.
    if (doc.issuer !== this.opts.issuer)
      throw new IdpFetchError('issuer_mismatch', 'discovery document issuer differs from config');
    const uri = doc.jwks_uri;
    if (typeof uri !== 'string' || !/^https?:\/\//.test(uri))
      throw new IdpFetchError('bad_body', 'discovery document has no usable jwks_uri');
    return uri;
  }

  private async getJson(
    url: string,
    provider: 'jwks' | 'oidc_discovery',
  ): Promise<Record<string, unknown>> {
    const started = performance.now();
    let result: 'ok' | 'error' | 'timeout' = 'error';
    try {
      const res = await fetch(url, {
        headers: { accept: 'application/json' },
        // A redirect is an error: the configured URL is the one we trust.
        redirect: 'manual',
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
      const buf = await res.arrayBuffer();
      if (res.status !== 200)
        throw new IdpFetchError('http_status', `${provider} answered HTTP ${res.status}`);
      if (buf.byteLength > MAX_BODY_BYTES)
        throw new IdpFetchError('bad_body', `${provider} document is too large`);
      const body = parseJsonObject(buf);
      if (body === undefined)
        throw new IdpFetchError('bad_body', `${provider} document is not a JSON object`);
      result = 'ok';
      return body;
    } catch (err) {
      if (err instanceof IdpFetchError) throw err;
      const timeout = err instanceof Error && err.name === 'TimeoutError';
      if (timeout) result = 'timeout';
      throw new IdpFetchError(timeout ? 'timeout' : 'network', `${provider} request failed`);
    } finally {
      this.opts.metrics?.idpCalls.inc({ provider, result });
      this.opts.metrics?.idpDuration.observe({ provider }, (performance.now() - started) / 1000);
    }
  }
}

export function parseJsonObject(buf: ArrayBuffer): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(new TextDecoder().decode(buf));
    return v !== null && typeof v === 'object' && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
