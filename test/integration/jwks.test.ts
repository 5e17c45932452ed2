// JWKS behaviour through the real server: key rotation (unknown kid → one refetch → allowed), the
// identity provider going down (last good keys, then deny after jwks_max_stale), and a flood of
// random kids making at most one fetch per cool-down.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  jwksOf,
  makeKey,
  startJwksServer,
  type JwksServer,
  type TestKey,
} from '../helpers/idp-servers.js';
import { EnvoyCheckClient, reasonOf, setHeaders } from '../helpers/official-envoy.js';
import { TestRedis, seedRedis } from '../helpers/redis.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const AUD = 'agent-authz';
const now = () => Math.floor(Date.now() / 1000);
let redis: TestRedis;

beforeAll(async () => {
  redis = await TestRedis.start();
});
afterAll(async () => {
  await redis?.stop();
});

async function setup(
  jwks: JwksServer,
  over: Record<string, unknown>,
): Promise<{ srv: TestServer; client: EnvoyCheckClient }> {
  await seedRedis(
    redis.url,
    `tenants: [{ tenant_id: acme }]
agents:
  - { agent_id: ci, tenant: acme, agent_role: deployer, status: approved, oidc_issuer: '${jwks.base}', oidc_subject: ci }`,
  );
  const srv = await startTestServer({
    redis_url: redis.url,
    jwt_issuers: [
      {
        issuer: jwks.base,
        audiences: [AUD],
        jwks_url: jwks.jwksUrl,
        algorithms: ['RS256', 'ES256'],
      },
    ],
    ...over,
  });
  return { srv, client: new EnvoyCheckClient(srv.address) };
}

const token = (key: TestKey, iss: string, extra: Record<string, unknown> = {}) =>
  key.sign({ iss, aud: AUD, sub: 'ci', exp: now() + 300, ...extra });

describe('JWKS through the server', () => {
  it('rotation: a token with a new kid causes one refetch, then is allowed; the IdP going down is bounded', async () => {
    const k1 = await makeKey('RS256');
    const k2 = await makeKey('ES256');
    const jwks = await startJwksServer(jwksOf(k1));
    const { srv, client } = await setup(jwks, {
      jwks_cooldown: '10ms',
      jwks_max_stale: '1500ms',
      jwks_refresh_interval: '1h',
    });
    try {
      expect(
        setHeaders(
          await client.check({ headers: { 'x-agent-token': await token(k1, jwks.base) } }),
        )['x-agent-id'],
      ).toBe('ci');
      const before = jwks.jwksFetches;
      jwks.setKeys(jwksOf(k2));
      await new Promise((r) => setTimeout(r, 20));
      const rotated = await client.check({
        headers: { 'x-agent-token': await token(k2, jwks.base) },
      });
      expect(setHeaders(rotated)['x-agent-identity-method']).toBe('jwt_oidc');
      expect(jwks.jwksFetches - before).toBe(1);

      // Down: the last good keys keep working (a fresh token, so no token-cache hit) ...
      jwks.setMode('error');
      expect(
        reasonOf(
          await client.check({
            headers: { 'x-agent-token': await token(k2, jwks.base, { jti: 'a' }) },
          }),
        ),
      ).toBe('allowed');
      // ... until jwks_max_stale after the last successful fetch, then a 503.
      await new Promise((r) => setTimeout(r, 1700));
      const late = await client.check({
        headers: { 'x-agent-token': await token(k2, jwks.base, { jti: 'b' }) },
      });
      expect(reasonOf(late)).toBe('identity_provider_unavailable');
      expect(late.denied_response?.status?.code).toBe(503);
    } finally {
      client.close();
      await srv.stop();
      await jwks.close();
    }
  });

  it('a flood of tokens with random kids makes at most one JWKS fetch per cool-down', async () => {
    const k1 = await makeKey('RS256');
    const jwks = await startJwksServer(jwksOf(k1));
    const { srv, client } = await setup(jwks, { jwks_cooldown: '60s' });
    try {
      const forger = await makeKey('RS256');
      const before = jwks.jwksFetches;
      const answers = await Promise.all(
        Array.from({ length: 60 }, async (_, i) =>
          reasonOf(
            await client.check({
              headers: {
                'x-agent-token': await forger.sign(
                  { iss: jwks.base, aud: AUD, sub: 'ci', exp: now() + 300 },
                  { kid: `random-${i}` },
                ),
              },
            }),
          ),
        ),
      );
      expect(new Set(answers)).toEqual(new Set(['invalid_token']));
      expect(jwks.jwksFetches - before).toBeLessThanOrEqual(1);
    } finally {
      client.close();
      await srv.stop();
      await jwks.close();
    }
  });
});
