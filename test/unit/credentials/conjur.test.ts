// conjur verification against a real whoami endpoint: host tokens, refusals, outages, the
// digest-keyed cache and single-flight. Assertions are on result status and reason codes only.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RequestFacts } from '../../../src/check/facts.js';
import type { CredentialResult } from '../../../src/credentials/credential.js';
import { ConjurVerifier, type ConjurVerifierOptions } from '../../../src/credentials/conjur.js';
import { createMetrics } from '../../../src/observability/metrics.js';
import { makeKey, startConjurServer, type ConjurServer } from '../../helpers/idp-servers.js';

// Conjur access tokens are JSON documents; what the agent sends is the raw token.
const HOST_TOKEN =
  '{"protected":"eyJhbGciOiJjb25qdXIub3JnL3Nsb3NpbG8vdjIifQ==","payload":"host-a"}';
const USER_TOKEN = '{"protected":"x","payload":"user-alice"}';

let conjur: ConjurServer;

function factsWith(headers: Record<string, string>): RequestFacts {
  const empty = new Map<string, string>();
  return {
    ...{ sourcePrincipal: '', sourceCertificate: '', sourceAddress: '', destinationPrincipal: '' },
    ...{ method: 'GET', path: '/', host: 'svc', requestId: 'r', contextExtensions: empty },
    headers: new Map(Object.entries(headers)),
  };
}

function verifier(over: Partial<ConjurVerifierOptions> = {}): ConjurVerifier {
  return new ConjurVerifier({
    url: `${conjur.url}/`,
    timeoutMs: 200,
    cacheTtlMs: 60_000,
    cacheMaxEntries: 100,
    ...over,
  });
}

async function check(v: ConjurVerifier, token: string, nowMs = Date.now()): Promise<string> {
  const r: CredentialResult = await v.verify(factsWith({ 'x-agent-token': token }), nowMs);
  return r.status === 'invalid' || r.status === 'unavailable'
    ? `${r.status}:${r.reason}`
    : r.status;
}

beforeAll(async () => {
  conjur = await startConjurServer();
  conjur.addToken(HOST_TOKEN, { account: 'myorg', username: 'host/agents/fraud-analyst' });
  conjur.addToken(USER_TOKEN, { account: 'myorg', username: 'alice' });
});
afterEach(() => conjur.setMode('up'));
afterAll(() => conjur.close());

describe('ConjurVerifier', () => {
  it('a host token → verified conjur lookup; the token reaches Conjur base64-encoded only', async () => {
    const r = await verifier().verify(factsWith({ 'x-agent-token': HOST_TOKEN }), Date.now());
    expect(r).toMatchObject({
      status: 'verified',
      method: 'conjur',
      lookup: { by: 'conjur', account: 'myorg', hostId: 'agents/fraud-analyst' },
    });
    expect(JSON.stringify(r)).not.toContain('eyJhbGciOiJjb25qdXIub3JnL3Nsb3NpbG8vdjIifQ');
    expect(conjur.tokensSeen.at(-1)).toBe(HOST_TOKEN);
  });

  it('is absent without x-agent-token', async () => {
    expect((await verifier().verify(factsWith({}), Date.now())).status).toBe('absent');
  });

  it('a JWT in x-agent-token is never sent to Conjur', async () => {
    const jwt = await (await makeKey('ES256')).sign({ sub: 'x' });
    const before = conjur.calls;
    expect(await check(verifier(), jwt)).toBe('absent');
    expect(conjur.calls).toBe(before);
  });

  it('an unknown token (401) → invalid_token', async () => {
    expect(await check(verifier(), 'not-a-known-token')).toBe('invalid:invalid_token');
  });

  it('a user (non-host) token → invalid_token', async () => {
    expect(await check(verifier(), USER_TOKEN)).toBe('invalid:invalid_token');
  });

  it.each(['error', 'close', 'hang'] as const)(
    'Conjur %s → unavailable identity_provider_unavailable',
    async (mode) => {
      conjur.setMode(mode);
      expect(await check(verifier(), HOST_TOKEN)).toBe('unavailable:identity_provider_unavailable');
    },
  );

  it('nothing listening → unavailable', async () => {
    const v = new ConjurVerifier({
      url: 'http://127.0.0.1:9',
      timeoutMs: 200,
      cacheTtlMs: 1000,
      cacheMaxEntries: 10,
    });
    expect(await check(v, HOST_TOKEN)).toBe('unavailable:identity_provider_unavailable');
  });

  it('counts a hang as a timeout in the idp metric', async () => {
    conjur.setMode('hang');
    const metrics = createMetrics({ defaultMetrics: false });
    await check(verifier({ metrics }), HOST_TOKEN);
    const calls = await metrics.idpCalls.get();
    expect(calls.values.find((s) => s.labels.provider === 'conjur')?.labels.result).toBe('timeout');
  });

  it('a cache hit makes no second call; an expired entry does', async () => {
    const v = verifier({ cacheTtlMs: 1000 });
    const now = Date.now();
    expect(await check(v, HOST_TOKEN, now)).toBe('verified');
    const calls = conjur.calls;
    conjur.setMode('error');
    expect(await check(v, HOST_TOKEN, now + 500)).toBe('verified');
    expect(conjur.calls).toBe(calls);
    conjur.setMode('up');
    expect(await check(v, HOST_TOKEN, now + 1500)).toBe('verified');
    expect(conjur.calls).toBe(calls + 1);
  });

  it('never caches past the token’s 8-minute life', async () => {
    const old = '{"protected":"x","payload":"host-old"}';
    const issued = new Date(Date.now() - 8 * 60_000 + 100).toISOString();
    conjur.addToken(old, { account: 'myorg', username: 'host/old', tokenIssuedAt: issued });
    const v = verifier({ cacheTtlMs: 60_000 });
    const now = Date.now();
    expect(await check(v, old, now)).toBe('verified');
    const calls = conjur.calls;
    await check(v, old, now + 1000);
    expect(conjur.calls).toBe(calls + 1);
  });

  it('concurrent requests with one token share one call', async () => {
    const v = verifier();
    const before = conjur.calls;
    const results = await Promise.all(Array.from({ length: 20 }, () => check(v, HOST_TOKEN)));
    expect(results.every((r) => r === 'verified')).toBe(true);
    expect(conjur.calls).toBe(before + 1);
  });

  it('failures are not cached', async () => {
    const v = verifier();
    conjur.setMode('error');
    expect(await check(v, HOST_TOKEN)).toBe('unavailable:identity_provider_unavailable');
    conjur.setMode('up');
    expect(await check(v, HOST_TOKEN)).toBe('verified');
  });
});
