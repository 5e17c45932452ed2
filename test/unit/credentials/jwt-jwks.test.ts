// JWKS fetching behind jwt_oidc against a real HTTP server: first fetch, single-flight, key
// rotation, unknown-kid floods under the cool-down, outages bounded by max-stale, and discovery.
// Durations are small and waits real; nothing asserts on timing, only on results and fetch counts.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createMetrics } from '../../../src/observability/metrics.js';
import type { RequestFacts } from '../../../src/check/facts.js';
import type { CredentialResult } from '../../../src/credentials/credential.js';
import { JwtVerifier, type JwtIssuerOptions } from '../../../src/credentials/jwt.js';
import {
  jwksOf,
  makeKey,
  startJwksServer,
  type JwksServer,
  type TestKey,
} from '../../helpers/idp-servers.js';

const AUD = 'agent-authz';

function factsWith(headers: Record<string, string>): RequestFacts {
  const empty = new Map<string, string>();
  return {
    ...{ sourcePrincipal: '', sourceCertificate: '', sourceAddress: '', destinationPrincipal: '' },
    ...{ method: 'GET', path: '/', host: 'svc', requestId: 'r', contextExtensions: empty },
    headers: new Map(Object.entries(headers)),
  };
}
let server: JwksServer;
let keyA: TestKey;
let verifier: JwtVerifier | undefined;

interface Timing {
  cooldownMs?: number;
  maxStaleMs?: number;
  refreshMs?: number;
  issuer?: Partial<JwtIssuerOptions>;
}

function make(t: Timing = {}, metrics = createMetrics({ defaultMetrics: false })): JwtVerifier {
  verifier = new JwtVerifier({
    issuers: [
      {
        issuer: server.base,
        audiences: [AUD],
        jwks_url: server.jwksUrl,
        algorithms: ['RS256', 'ES256'],
        spiffe: false,
        ...t.issuer,
      },
    ],
    clockSkewMs: 5000,
    spiffeTrustDomains: [],
    // Disabled so that every call below really verifies.
    tokenCacheMaxEntries: 0,
    jwksRefreshIntervalMs: t.refreshMs ?? 60_000,
    jwksMaxStaleMs: t.maxStaleMs ?? 60_000,
    jwksCooldownMs: t.cooldownMs ?? 60_000,
    jwksTimeoutMs: 500,
    metrics,
  });
  return verifier;
}

function sign(key: TestKey, header: Record<string, unknown> = {}): Promise<string> {
  const exp = Math.floor(Date.now() / 1000) + 300;
  return key.sign({ iss: server.base, sub: 'agent-1', aud: AUD, exp, jti: randomUUID() }, header);
}

async function check(v: JwtVerifier, token: string): Promise<string> {
  const r: CredentialResult = await v.verify(factsWith({ 'x-agent-token': token }), Date.now());
  return r.status === 'invalid' || r.status === 'unavailable'
    ? `${r.status}:${r.reason}`
    : r.status;
}

beforeEach(async () => {
  keyA = await makeKey('RS256');
  server = await startJwksServer(jwksOf(keyA));
});
afterEach(async () => {
  verifier?.close();
  verifier = undefined;
  await server.close();
});

describe('first fetch', () => {
  it('concurrent tokens before any fetch share one request', async () => {
    const v = make();
    const tokens = await Promise.all(Array.from({ length: 20 }, () => sign(keyA)));
    const results = await Promise.all(tokens.map((t) => check(v, t)));
    expect(results.every((r) => r === 'verified')).toBe(true);
    expect(server.jwksFetches).toBe(1);
  });

  it('an unreachable JWKS before the first success → unavailable', async () => {
    server.setMode('error');
    const v = make();
    expect(await check(v, await sign(keyA))).toBe('unavailable:identity_provider_unavailable');
  });

  it('a hanging JWKS is cut off by the timeout and counted', async () => {
    server.setMode('hang');
    const metrics = createMetrics({ defaultMetrics: false });
    const v = make({}, metrics);
    expect(await check(v, await sign(keyA))).toBe('unavailable:identity_provider_unavailable');
    const calls = await metrics.idpCalls.get();
    const timeout = calls.values.find((s) => s.labels.result === 'timeout');
    expect(timeout?.value).toBe(1);
  });
});

describe('unknown kid', () => {
  it('after key rotation: exactly one refetch, then verified', async () => {
    const v = make({ cooldownMs: 100 });
    expect(await check(v, await sign(keyA))).toBe('verified');
    expect(server.jwksFetches).toBe(1);
    const keyB = await makeKey('ES256');
    server.setKeys(jwksOf(keyB));
    await sleep(150);
    expect(await check(v, await sign(keyB))).toBe('verified');
    expect(server.jwksFetches).toBe(2);
    expect(await check(v, await sign(keyB))).toBe('verified');
    expect(server.jwksFetches).toBe(2);
  });

  it('inside the cool-down: no refetch, invalid_token', async () => {
    const v = make({ cooldownMs: 60_000 });
    expect(await check(v, await sign(keyA))).toBe('verified');
    const keyB = await makeKey('RS256');
    server.setKeys(jwksOf(keyA, keyB));
    expect(await check(v, await sign(keyB))).toBe('invalid:invalid_token');
    expect(server.jwksFetches).toBe(1);
  });

  it('a flood of 200 random kids makes at most one fetch per cool-down', async () => {
    // Tokens are signed up front so that signing time cannot stretch past the cool-down.
    const flood = (): Promise<string[]> =>
      Promise.all(Array.from({ length: 200 }, () => sign(keyA, { kid: randomUUID() })));
    const [first, second] = [await flood(), await flood()];
    const v = make({ cooldownMs: 1000 });
    expect(await check(v, await sign(keyA))).toBe('verified');
    await sleep(1100);
    const r1 = await Promise.all(first.map((t) => check(v, t)));
    expect(r1.every((r) => r === 'invalid:invalid_token')).toBe(true);
    expect(server.jwksFetches).toBe(2);
    // Still inside the cool-down window opened by that refetch.
    const r2 = await Promise.all(second.map((t) => check(v, t)));
    expect(r2.every((r) => r === 'invalid:invalid_token')).toBe(true);
    expect(server.jwksFetches).toBe(2);
  });

  it('a refetch that fails → unavailable, not invalid', async () => {
    const v = make({ cooldownMs: 0 });
    expect(await check(v, await sign(keyA))).toBe('verified');
    server.setMode('error');
    const unknown = await sign(keyA, { kid: 'rotated-away' });
    expect(await check(v, unknown)).toBe('unavailable:identity_provider_unavailable');
  });
});

describe('JWKS outage', () => {
  it('serves the last good keys until max-stale, then unavailable, then recovers', async () => {
    const v = make({ refreshMs: 50, cooldownMs: 50, maxStaleMs: 1000 });
    v.start();
    await vi.waitFor(() => expect(server.jwksFetches).toBeGreaterThan(0));
    expect(await check(v, await sign(keyA))).toBe('verified');
    server.setMode('close');
    const failedFrom = server.jwksFetches;
    await vi.waitFor(() => expect(server.jwksFetches).toBeGreaterThan(failedFrom));
    // Refreshes now fail, but the keys fetched before are still served.
    expect(await check(v, await sign(keyA))).toBe('verified');
    await vi.waitFor(
      async () =>
        expect(await check(v, await sign(keyA))).toBe('unavailable:identity_provider_unavailable'),
      { timeout: 5000, interval: 50 },
    );
    server.setMode('up');
    await vi.waitFor(async () => expect(await check(v, await sign(keyA))).toBe('verified'), {
      timeout: 5000,
      interval: 50,
    });
  });
});

describe('OIDC discovery', () => {
  const viaDiscovery = (): Partial<JwtIssuerOptions> => ({
    jwks_url: undefined,
    discovery_url: server.discoveryUrl,
  });

  it('resolves jwks_uri from the discovery document', async () => {
    const v = make({ issuer: viaDiscovery() });
    expect(await check(v, await sign(keyA))).toBe('verified');
    expect(server.discoveryFetches).toBe(1);
    expect(server.jwksFetches).toBe(1);
  });

  it('a document naming another issuer is refused → unavailable, keys never fetched', async () => {
    server.setDiscoveryIssuer('https://someone-else.example');
    const v = make({ issuer: viaDiscovery() });
    expect(await check(v, await sign(keyA))).toBe('unavailable:identity_provider_unavailable');
    expect(server.jwksFetches).toBe(0);
  });
});
