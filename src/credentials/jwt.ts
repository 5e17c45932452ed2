// Credential 3, `jwt_oidc`: a JWT in `x-agent-token` or `authorization: Bearer`, verified with jose
// against its issuer's JWKS. OIDC tokens name their agent by (iss, sub); JWT-SVIDs by their SPIFFE
// ID `sub`, following the JWT-SVID rules.
import { decodeJwt, errors, jwtVerify } from 'jose';
import type { JWTPayload, JWTVerifyOptions, JWTVerifyResult } from 'jose';
import type { RequestFacts } from '../check/facts.js';
import type { Config } from '../config/config.js';
import { ABSENT, invalid, type CredentialResult, type CredentialVerifier } from './credential.js';
import { JwksCache, JwksUnavailableError, type IdpMetrics, type WarnLogger } from './jwks-cache.js';
import {
  DEFAULT_TOKEN_CACHE_TTL_MS,
  MAX_TOKEN_LENGTH,
  VerifiedTokenCache,
  findJwt,
} from './jwt-token.js';
import { parseSpiffeId } from './spiffe-id.js';

export interface JwtIssuerOptions {
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly jwks_url?: string | undefined;
  readonly discovery_url?: string | undefined;
  /** Asymmetric algorithms only (config validation refuses HS* and none). */
  readonly algorithms: readonly string[];
  /** JWT-SVID issuer: `sub` must be a SPIFFE ID in a trusted trust domain. */
  readonly spiffe: boolean;
}

export interface JwtVerifierOptions {
  readonly issuers: readonly JwtIssuerOptions[];
  readonly clockSkewMs: number;
  readonly spiffeTrustDomains: readonly string[];
  readonly tokenCacheMaxEntries: number;
  /** Upper bound on trusting a verified token without re-checking it; default 5 min. */
  readonly tokenCacheTtlMs?: number | undefined;
  readonly jwksRefreshIntervalMs: number;
  readonly jwksMaxStaleMs: number;
  readonly jwksCooldownMs: number;
  readonly jwksTimeoutMs: number;
  readonly metrics?: IdpMetrics | undefined;
  readonly logger?: WarnLogger | undefined;
  /** Clock for JWKS staleness and cool-down (token claims use verify's nowMs). */
  readonly now?: (() => number) | undefined;
}

// JWT-SVID.md §3: only these; EdDSA is allowed for plain OIDC issuers but not for SVIDs.
const SVID_ALGORITHMS = new Set([
  'RS256',
  'RS384',
  'RS512',
  'ES256',
  'ES384',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
]);

const SVID_HEADERS = new Set(['alg', 'kid', 'typ']);

interface Issuer {
  readonly cfg: JwtIssuerOptions;
  readonly jwks: JwksCache;
  readonly verifyOptions: JWTVerifyOptions;
}

const UNAVAILABLE: CredentialResult = Object.freeze({
  status: 'unavailable',
  reason: 'identity_provider_unavailable',
});

export class JwtVerifier implements CredentialVerifier {
  readonly kind = 'jwt_oidc';
  private readonly issuers = new Map<string, Issuer>();
  private readonly trustDomains: ReadonlySet<string>;
  private readonly cache: VerifiedTokenCache;

  constructor(opts: JwtVerifierOptions) {
    this.trustDomains = new Set(opts.spiffeTrustDomains);
    this.cache = new VerifiedTokenCache(
      opts.tokenCacheMaxEntries,
      opts.tokenCacheTtlMs ?? DEFAULT_TOKEN_CACHE_TTL_MS,
    );
    for (const cfg of opts.issuers) {
      if (this.issuers.has(cfg.issuer)) continue; // first entry for an issuer wins
      const algorithms = cfg.spiffe
        ? cfg.algorithms.filter((a) => SVID_ALGORITHMS.has(a))
        : [...cfg.algorithms];
      const jwks = new JwksCache({
        issuer: cfg.issuer,
        jwksUrl: cfg.jwks_url,
        discoveryUrl: cfg.discovery_url,
        refreshIntervalMs: opts.jwksRefreshIntervalMs,
        maxStaleMs: opts.jwksMaxStaleMs,
        cooldownMs: opts.jwksCooldownMs,
        timeoutMs: opts.jwksTimeoutMs,
        metrics: opts.metrics,
        logger: opts.logger,
        now: opts.now,
      });
      const verifyOptions: JWTVerifyOptions = {
        // Pinned per issuer: `none` and every HS* are refused before any key is looked up.
        algorithms,
        issuer: cfg.issuer,
        // Setting `audience` also makes `aud` mandatory (JWT-SVID and R-1.3c).
        audience: [...cfg.audiences],
        // jose does not require exp by default; a token that never expires is never accepted.
        requiredClaims: ['exp', 'sub'],
        clockTolerance: Math.floor(opts.clockSkewMs / 1000),
      };
      this.issuers.set(cfg.issuer, { cfg, jwks, verifyOptions });
    }
  }

  /** Maps the parsed configuration onto the options above. */
  static fromConfig(
    config: Config,
    deps: { metrics?: IdpMetrics; logger?: WarnLogger } = {},
  ): JwtVerifier {
    return new JwtVerifier({
      issuers: config.jwt_issuers,
      clockSkewMs: config.jwt_clock_skew,
      spiffeTrustDomains: config.spiffe_trust_domains,
      tokenCacheMaxEntries: config.token_cache_max_entries,
      // A withdrawn key stops vouching for cached tokens by the next JWKS refresh at the latest.
      tokenCacheTtlMs: Math.min(config.jwks_refresh_interval, DEFAULT_TOKEN_CACHE_TTL_MS),
      jwksRefreshIntervalMs: config.jwks_refresh_interval,
      jwksMaxStaleMs: config.jwks_max_stale,
      jwksCooldownMs: config.jwks_cooldown,
      jwksTimeoutMs: config.jwks_timeout,
      metrics: deps.metrics,
      logger: deps.logger,
    });
  }

  /**
   * Fetches every issuer's keys once, waiting at most `timeoutMs`, so the first tokens after
   * start-up do not each wait for a JWKS fetch inside Envoy's check timeout.
   */
  async warmUp(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    const all = Promise.all([...this.issuers.values()].map((i) => i.jwks.refresh())).then(
      () => undefined,
    );
    await Promise.race([all, limit]);
    clearTimeout(timer);
  }

  /** Starts background JWKS fetching for every issuer. */
  start(): void {
    for (const i of this.issuers.values()) i.jwks.start();
  }

  close(): void {
    for (const i of this.issuers.values()) i.jwks.close();
    this.cache.clear();
  }

  /** Synchronous on a cache hit: the hot path is one digest and one map lookup. */
  verify(facts: RequestFacts, nowMs: number): CredentialResult | Promise<CredentialResult> {
    const token = findJwt(facts.headers);
    if (token === undefined) return ABSENT;
    const fromAgentHeader = facts.headers.get('x-agent-token') === token;
    return this.cache.get(token, nowMs) ?? this.verifyUncached(token, nowMs, fromAgentHeader);
  }

  private async verifyUncached(
    token: string,
    nowMs: number,
    fromAgentHeader: boolean,
  ): Promise<CredentialResult> {
    if (token.length > MAX_TOKEN_LENGTH) return invalid('invalid_token');
    // `iss` is read before the signature is checked only to choose which keys to check it with;
    // jwtVerify then requires the same value.
    let iss: unknown;
    try {
      iss = decodeJwt(token).iss;
    } catch {
      return invalid('invalid_token');
    }
    if (typeof iss !== 'string') return invalid('invalid_token');
    const issuer = this.issuers.get(iss);
    // `authorization` also carries the application's own bearer tokens: one from an issuer we do not
    // know is simply not an agent credential. In x-agent-token it can only be an agent's, so deny.
    if (issuer === undefined) return fromAgentHeader ? invalid('untrusted_issuer') : ABSENT;

    let verified: JWTVerifyResult;
    try {
      verified = await this.verifySignature(token, issuer, nowMs);
    } catch (err) {
      // Fail closed: anything other than "the IdP is down" means the token is not acceptable.
      return err instanceof JwksUnavailableError ? UNAVAILABLE : invalid('invalid_token');
    }
    const result = issuer.cfg.spiffe
      ? this.svidResult(verified, iss)
      : this.oidcResult(verified.payload, iss);
    if (result.status === 'verified') this.cache.set(token, result, verified.payload.exp!, nowMs);
    return result;
  }

  private async verifySignature(
    token: string,
    issuer: Issuer,
    nowMs: number,
  ): Promise<JWTVerifyResult> {
    const options = { ...issuer.verifyOptions, currentDate: new Date(nowMs) };
    try {
      return await jwtVerify(token, issuer.jwks.getKey, options);
    } catch (err) {
      if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw err;
      // No `kid` and several keys of the right type: try each (bounded by the key set's size).
      for await (const key of err) {
        try {
          return await jwtVerify(token, key, options);
        } catch (inner) {
          if (!(inner instanceof errors.JWSSignatureVerificationFailed)) throw inner;
        }
      }
      throw new errors.JWSSignatureVerificationFailed();
    }
  }

  private oidcResult(payload: JWTPayload, iss: string): CredentialResult {
    const sub = payload.sub;
    if (typeof sub !== 'string' || sub === '') return invalid('invalid_token');
    return {
      status: 'verified',
      method: 'jwt_oidc',
      lookup: { by: 'oidc', issuer: iss, subject: sub },
      credentialRef: `${iss}|${sub}`,
    };
  }

  private svidResult(verified: JWTVerifyResult, iss: string): CredentialResult {
    // JWT-SVID.md §2: only alg, kid and typ may appear, and `typ`, when present, is JWT or JOSE.
    const header = verified.protectedHeader;
    if (Object.keys(header).some((name) => !SVID_HEADERS.has(name)))
      return invalid('invalid_token');
    if (header.typ !== undefined && header.typ !== 'JWT' && header.typ !== 'JOSE')
      return invalid('invalid_token');
    const sub = verified.payload.sub ?? '';
    const id = parseSpiffeId(sub);
    if (!id.ok) return invalid('invalid_spiffe_id');
    // Exact membership, never a prefix: `example.orgx` is not `example.org`.
    if (!this.trustDomains.has(id.trustDomain)) return invalid('untrusted_trust_domain');
    return {
      status: 'verified',
      method: 'jwt_oidc',
      lookup: { by: 'spiffe', value: sub },
      credentialRef: `${iss}|${sub}`,
    };
  }
}
