// Issue [identity] end to end: every credential type, the priority order, both key bindings, and a
// decision table that reaches every reason code, through the real server, a real redis-server and
// real HTTP endpoints for JWKS, OIDC discovery and Conjur /whoami.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_REASONS, REASONS } from '../../src/check/reasons.js';
import { mintApiKey } from '../../src/credentials/api-key.js';
import { createCa, issueLeaf, type TestCa } from '../helpers/certs.js';
import {
  makeKey,
  jwksOf,
  startConjurServer,
  startJwksServer,
  type ConjurServer,
  type JwksServer,
  type TestKey,
} from '../helpers/idp-servers.js';
import {
  EnvoyCheckClient,
  reasonOf,
  setHeaders,
  type DecodedResponse,
  type EnvoyLikeRequest,
} from '../helpers/official-envoy.js';
import { TestRedis, seedRedis } from '../helpers/redis.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const TD = 'example.org';
const AUD = 'agent-authz';
const keys = {
  kb: mintApiKey('key-kb'),
  free: mintApiKey('key-free'),
  read: mintApiKey('key-read'),
  revoked: mintApiKey('key-revoked'),
  expired: mintApiKey('key-expired'),
  strict: mintApiKey('key-strict'),
  roles: mintApiKey('key-roles'),
};
const secrets: string[] = Object.values(keys).map((k) => k.secret);

let redis: TestRedis;
let jwks: JwksServer;
let svidJwks: JwksServer;
let conjur: ConjurServer;
let rsa: TestKey;
let ec: TestKey;
let svidKey: TestKey;
let ca: TestCa;
let certPem = '';
let retiredCert: { pem: string; fingerprint: string };
let srv: TestServer;
let client: EnvoyCheckClient;
const seen = new Set<string>();

function yaml(certFp: string, retiredFp: string): string {
  const future = new Date(Date.now() + 86400_000).toISOString();
  const past = new Date(Date.now() - 1000).toISOString();
  return `
tenants: [{ tenant_id: acme }, { tenant_id: strict, require_agent_id: true }]
agents:
  - { agent_id: mesh, tenant: acme, agent_role: worker, status: approved, spiffe_id: spiffe://${TD}/agents/mesh }
  - { agent_id: certy, tenant: acme, agent_role: worker, status: approved, cert_fingerprint: ${certFp} }
  - { agent_id: retired, tenant: acme, agent_role: worker, status: approved, cert_fingerprint: ${'ee'.repeat(32)}, cert_fingerprint_prev: ${retiredFp}, cert_fingerprint_prev_expires_at: '${past}' }
  - { agent_id: oidc-agent, tenant: acme, agent_role: worker, status: approved, oidc_issuer: ${jwks.base}, oidc_subject: ci-pipeline }
  - { agent_id: svid-agent, tenant: acme, agent_role: worker, status: approved, spiffe_id: spiffe://${TD}/agents/svid }
  - { agent_id: conjur-agent, tenant: acme, agent_role: worker, status: approved, conjur_account: acme-prod, conjur_host_id: agents/fraud }
  - { agent_id: kb, tenant: acme, agent_role: analyst, permitted_roles: [analyst, reader], status: approved, bound_key_id: key-kb }
  - { agent_id: free-agent, tenant: acme, agent_role: analyst, status: approved }
  - { agent_id: pending-agent, tenant: acme, agent_role: analyst, status: pending }
  - { agent_id: strict-agent, tenant: strict, agent_role: analyst, status: approved }
keys:
  - { key_id: key-kb, tenant: acme, scope: evaluate, digest: ${keys.kb.digest}, bound_agent_id: kb }
  - { key_id: key-free, tenant: acme, scope: evaluate, digest: ${keys.free.digest} }
  - { key_id: key-read, tenant: acme, scope: read, digest: ${keys.read.digest} }
  - { key_id: key-revoked, tenant: acme, scope: evaluate, digest: ${keys.revoked.digest}, status: revoked }
  - { key_id: key-expired, tenant: acme, scope: evaluate, digest: ${keys.expired.digest}, expires_at: '${past}' }
  - { key_id: key-strict, tenant: strict, scope: evaluate, digest: ${keys.strict.digest}, expires_at: '${future}' }
  - { key_id: key-roles, tenant: acme, scope: admin, digest: ${keys.roles.digest}, permitted_roles: [reader] }
`;
}

const now = () => Math.floor(Date.now() / 1000);
async function oidcToken(
  claims: Record<string, unknown> = {},
  key: TestKey = rsa,
): Promise<string> {
  const t = await key.sign({
    iss: jwks.base,
    aud: AUD,
    sub: 'ci-pipeline',
    exp: now() + 300,
    iat: now(),
    ...claims,
  });
  secrets.push(t);
  return t;
}

async function check(req: EnvoyLikeRequest): Promise<DecodedResponse> {
  const res = await client.check(req);
  seen.add(reasonOf(res));
  for (const s of secrets) expect(JSON.stringify(res)).not.toContain(s);
  return res;
}

function expectReason(res: DecodedResponse, reason: string): void {
  expect(reasonOf(res)).toBe(reason);
  const r = REASONS[reason as keyof typeof REASONS];
  expect(res.status?.code ?? 0).toBe(r.grpc);
  if (reason !== 'allowed') expect(res.denied_response?.status?.code).toBe(r.http);
}

beforeAll(async () => {
  rsa = await makeKey('RS256');
  ec = await makeKey('ES256');
  svidKey = await makeKey('ES256');
  jwks = await startJwksServer(jwksOf(rsa, ec));
  svidJwks = await startJwksServer(jwksOf(svidKey));
  conjur = await startConjurServer();
  conjur.addToken('conjur-token-fraud', { account: 'acme-prod', username: 'host/agents/fraud' });
  conjur.addToken('conjur-token-unknown', { account: 'acme-prod', username: 'host/agents/nobody' });
  secrets.push('conjur-token-fraud', 'conjur-token-unknown');
  ca = await createCa();
  const cert = await issueLeaf(ca, { cn: 'certy' });
  retiredCert = await issueLeaf(ca, { cn: 'retired-old' });
  redis = await TestRedis.start();
  await seedRedis(redis.url, yaml(cert.fingerprint, retiredCert.fingerprint));
  srv = await startTestServer({
    redis_url: redis.url,
    spiffe_trust_domains: TD,
    cert_trusted_issuers: 'agent-authz test CA',
    jwt_issuers: [
      {
        issuer: jwks.base,
        audiences: [AUD],
        jwks_url: jwks.jwksUrl,
        algorithms: ['RS256', 'ES256'],
      },
      {
        issuer: svidJwks.base,
        audiences: [AUD],
        discovery_url: svidJwks.discoveryUrl,
        algorithms: ['ES256'],
        spiffe: true,
      },
    ],
    jwks_cooldown: '60s',
    conjur_url: conjur.url,
    conjur_timeout: '1s',
    max_in_flight: 4,
    log_level: 'debug',
  });
  client = new EnvoyCheckClient(srv.address);
  certPem = cert.pem;
});

afterAll(async () => {
  client?.close();
  await srv?.stop();
  await Promise.all([redis?.stop(), jwks?.close(), svidJwks?.close(), conjur?.close()]);
});

describe('credential types', () => {
  it('jwt_oidc: RS256 and ES256 tokens from x-agent-token or Authorization: Bearer', async () => {
    let res = await check({ headers: { 'x-agent-token': await oidcToken() } });
    expectReason(res, 'allowed');
    expect(setHeaders(res)).toMatchObject({
      'x-agent-id': 'oidc-agent',
      'x-agent-identity-method': 'jwt_oidc',
    });
    res = await check({ headers: { authorization: `Bearer ${await oidcToken({}, ec)}` } });
    expect(setHeaders(res)['x-agent-id']).toBe('oidc-agent');
  });

  it('jwt_oidc JWT-SVID: sub is a SPIFFE ID matched to spiffe_id', async () => {
    const t = await svidKey.sign({
      iss: svidJwks.base,
      aud: AUD,
      sub: `spiffe://${TD}/agents/svid`,
      exp: now() + 300,
    });
    const res = await check({ headers: { authorization: `Bearer ${t}` } });
    expect(setHeaders(res)).toMatchObject({
      'x-agent-id': 'svid-agent',
      'x-agent-identity-method': 'jwt_oidc',
    });
    const bad = await svidKey.sign({
      iss: svidJwks.base,
      aud: AUD,
      sub: `spiffe://evil.org/agents/svid`,
      exp: now() + 300,
    });
    expectReason(await check({ headers: { 'x-agent-token': bad } }), 'untrusted_trust_domain');
    const malformed = await svidKey.sign({
      iss: svidJwks.base,
      aud: AUD,
      sub: 'spiffe://example.org/a//b',
      exp: now() + 300,
    });
    expectReason(await check({ headers: { 'x-agent-token': malformed } }), 'invalid_spiffe_id');
  });

  it('conjur: a non-JWT x-agent-token resolved through /whoami', async () => {
    const res = await check({ headers: { 'x-agent-token': 'conjur-token-fraud' } });
    expect(setHeaders(res)).toMatchObject({
      'x-agent-id': 'conjur-agent',
      'x-agent-identity-method': 'conjur',
    });
    expect(conjur.tokensSeen).toContain('conjur-token-fraud');
    expectReason(
      await check({ headers: { 'x-agent-token': 'conjur-token-forged' } }),
      'invalid_token',
    );
    expectReason(
      await check({ headers: { 'x-agent-token': 'conjur-token-unknown' } }),
      'agent_not_registered',
    );
  });

  it('api keys: key_bound and self_declared', async () => {
    let res = await check({ headers: { 'x-api-key': keys.kb.secret } });
    expect(setHeaders(res)).toMatchObject({
      'x-agent-id': 'kb',
      'x-agent-identity-method': 'key_bound',
    });
    res = await check({ headers: { 'x-api-key': keys.free.secret, 'x-agent-id': 'free-agent' } });
    expect(setHeaders(res)).toMatchObject({
      'x-agent-id': 'free-agent',
      'x-agent-identity-method': 'self_declared',
    });
  });

  it('unknown, wrong, expired and revoked keys get identical answers (decision id aside)', async () => {
    const bodies: string[] = [];
    for (const k of [
      'aak_key-nope.' + 'A'.repeat(43),
      keys.kb.secret.slice(0, -1) + 'x',
      keys.expired.secret,
      keys.revoked.secret,
      'garbage',
    ]) {
      const res = await check({ headers: { 'x-api-key': k, 'x-agent-id': 'free-agent' } });
      expectReason(res, 'invalid_api_key');
      bodies.push(
        JSON.stringify({ ...res, dynamic_metadata: undefined }).replace(/[0-9a-f-]{36}/g, 'ID'),
      );
    }
    expect(new Set(bodies).size).toBe(1);
  });
});

describe('priority and fall-through (SPEC §2)', () => {
  it('a registered certificate and an API key are decided as pki', async () => {
    const res = await check({
      certificate: certPem,
      headers: { 'x-api-key': keys.free.secret },
    });
    expect(setHeaders(res)).toMatchObject({
      'x-agent-id': 'certy',
      'x-agent-identity-method': 'pki',
    });
  });
  it('an unregistered SPIFFE ID plus a valid JWT is decided as jwt_oidc', async () => {
    const res = await check({
      principal: `spiffe://${TD}/agents/unregistered`,
      headers: { 'x-agent-token': await oidcToken() },
    });
    expect(setHeaders(res)).toMatchObject({
      'x-agent-id': 'oidc-agent',
      'x-agent-identity-method': 'jwt_oidc',
    });
  });
  it('an invalid JWT plus a valid API key is denied (no fall-through past an invalid credential)', async () => {
    const expired = await oidcToken({ exp: now() - 600 });
    expectReason(
      await check({ headers: { 'x-agent-token': expired, 'x-api-key': keys.kb.secret } }),
      'invalid_token',
    );
  });
});

describe('JWT matrix through the server', () => {
  it('rejects alg none, HS256, missing exp, expired, future nbf, wrong aud, wrong iss', async () => {
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const claims = { iss: jwks.base, aud: AUD, sub: 'ci-pipeline', exp: now() + 300 };
    const none = `${b64({ alg: 'none' })}.${b64(claims)}.`;
    const { SignJWT } = await import('jose');
    const hs = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', kid: rsa.kid })
      .sign(new TextEncoder().encode('x'.repeat(32)));
    const noExp = await rsa.sign({ iss: jwks.base, aud: AUD, sub: 'ci-pipeline' });
    for (const t of [
      none,
      hs,
      noExp,
      await oidcToken({ exp: now() - 600 }),
      await oidcToken({ nbf: now() + 600 }),
      await oidcToken({ aud: 'other' }),
    ]) {
      expectReason(await check({ headers: { 'x-agent-token': t } }), 'invalid_token');
    }
    const foreign = await rsa.sign({
      iss: 'https://idp.evil',
      aud: AUD,
      sub: 'ci-pipeline',
      exp: now() + 300,
    });
    expectReason(await check({ headers: { 'x-agent-token': foreign } }), 'untrusted_issuer');
    // The same foreign token in Authorization belongs to the application: not an agent credential.
    expectReason(
      await check({ headers: { authorization: `Bearer ${foreign}` } }),
      'no_credentials',
    );
  });
});

describe('enforcement sequence and bindings (seed 000)', () => {
  it('key bound to agent A used for agent B → key_agent_binding', async () => {
    expectReason(
      await check({ headers: { 'x-api-key': keys.kb.secret, 'x-agent-id': 'free-agent' } }),
      'key_agent_binding',
    );
  });
  it('agent A bound to key K called with key L → key_agent_binding', async () => {
    expectReason(
      await check({ headers: { 'x-api-key': keys.free.secret, 'x-agent-id': 'kb' } }),
      'key_agent_binding',
    );
  });
  it('key permitted_roles restricts the requested role', async () => {
    expectReason(
      await check({
        headers: {
          'x-api-key': keys.roles.secret,
          'x-agent-id': 'free-agent',
          'x-agent-role': 'analyst',
        },
      }),
      'key_role_restriction',
    );
  });
  it('unbound key without x-agent-id in a tenant that requires it → agent_id_required', async () => {
    expectReason(
      await check({ headers: { 'x-api-key': keys.strict.secret } }),
      'agent_id_required',
    );
    expectReason(
      await check({ headers: { 'x-api-key': keys.strict.secret, 'x-agent-id': 'strict-agent' } }),
      'allowed',
    );
  });
  it('scope read cannot pass Check', async () => {
    expectReason(
      await check({ headers: { 'x-api-key': keys.read.secret, 'x-agent-id': 'free-agent' } }),
      'key_scope_insufficient',
    );
  });
  it('registry, status and role steps', async () => {
    expectReason(
      await check({ headers: { 'x-api-key': keys.free.secret, 'x-agent-id': 'ghost' } }),
      'agent_not_registered',
    );
    expectReason(
      await check({ headers: { 'x-api-key': keys.free.secret, 'x-agent-id': 'strict-agent' } }),
      'agent_not_registered',
    );
    expectReason(
      await check({ headers: { 'x-api-key': keys.free.secret, 'x-agent-id': 'pending-agent' } }),
      'agent_not_approved',
    );
    expectReason(
      await check({ headers: { 'x-api-key': keys.kb.secret, 'x-agent-role': 'admin' } }),
      'role_not_permitted',
    );
    expectReason(
      await check({ principal: `spiffe://${TD}/agents/mesh`, headers: { 'x-agent-id': 'kb' } }),
      'agent_id_mismatch',
    );
  });
});

describe('every reason code is reachable', () => {
  it('credential and request errors', async () => {
    expectReason(await check({}), 'no_credentials');
    expectReason(
      await check({ principal: `spiffe://${TD}/agents/mesh`, headers: { 'x-agent-id': 'a,b' } }),
      'malformed_header',
    );
    const garbage = await client.checkRaw(Buffer.from([0x0a, 0x05, 0x0a, 0xff, 0xff]));
    seen.add(reasonOf(garbage));
    expectReason(garbage, 'malformed_request');
    expectReason(await check({ principal: `spiffe://${TD}/x/../y` }), 'invalid_spiffe_id');
    expectReason(
      await check({ principal: 'spiffe://evil.org/agents/mesh' }),
      'untrusted_trust_domain',
    );
    const rogue = await issueLeaf(await createCa('rogue', 'x'), { cn: 'r' });
    expectReason(await check({ certificate: rogue.pem }), 'untrusted_issuer');
    const two = await issueLeaf(ca, { uris: [`spiffe://${TD}/a/b`, `spiffe://${TD}/c/d`] });
    expectReason(await check({ certificate: two.pem }), 'certificate_invalid');
    const old = await issueLeaf(ca, {
      cn: 'o',
      notBefore: new Date(Date.now() - 2 * 86400_000),
      notAfter: new Date(Date.now() - 86400_000),
    });
    expectReason(await check({ certificate: old.pem }), 'certificate_expired');
    expectReason(await check({ certificate: retiredCert.pem }), 'certificate_retired');
  });

  it('identity provider down, slow decisions and overload', async () => {
    conjur.setMode('error');
    expectReason(
      await check({ headers: { 'x-agent-token': 'conjur-token-new-1' } }),
      'identity_provider_unavailable',
    );
    conjur.setMode('hang');
    // Conjur hangs longer than the 150 ms decision budget: decision_timeout; with max_in_flight 4
    // the fifth concurrent check is shed as overloaded.
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        check({ headers: { 'x-agent-token': `conjur-token-hang-${i}` } }),
      ),
    );
    const reasons = results.map(reasonOf);
    expect(reasons).toContain('decision_timeout');
    expect(reasons).toContain('overloaded');
    for (const r of results) expect(r.denied_response?.status?.code).toBe(503);
    conjur.setMode('up');
  });

  it('registry unavailable', async () => {
    await redis.kill();
    expectReason(
      await check({ headers: { 'x-api-key': keys.free.secret, 'x-agent-id': 'nobody-cached' } }),
      'registry_unavailable',
    );
  });

  it('covers every code in the table (internal_error is covered by the handler unit test)', () => {
    const missing = ALL_REASONS.filter((r) => !seen.has(r) && r !== 'internal_error');
    expect(missing).toEqual([]);
  });

  it('no secret, token or key appears in logs or metrics', async () => {
    const metrics = await srv.app.metrics.registry.metrics();
    const logs = srv.logs.join('');
    expect(logs.length).toBeGreaterThan(0);
    const tokens = [...secrets];
    expect(tokens.length).toBeGreaterThan(15);
    for (const s of tokens) {
      expect(logs).not.toContain(s);
      expect(metrics).not.toContain(s);
    }
    expect(logs).not.toContain('BEGIN CERTIFICATE');
  });
});
