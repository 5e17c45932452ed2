// jwt_oidc verification against a real JWKS server: the token table of R-1.7b, JWT-SVID rules and
// the verified-token cache. Assertions are on result status and reason codes only.
import { randomUUID } from 'node:crypto';
import { SignJWT, base64url } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RequestFacts } from '../../../src/check/facts.js';
import type { CredentialResult } from '../../../src/credentials/credential.js';
import { JwtVerifier, type JwtVerifierOptions } from '../../../src/credentials/jwt.js';
import {
  jwksOf,
  makeKey,
  startJwksServer,
  type JwksServer,
  type TestKey,
} from '../../helpers/idp-servers.js';

function factsWith(headers: Record<string, string>): RequestFacts {
  return {
    sourcePrincipal: '',
    sourceCertificate: '',
    sourceAddress: '127.0.0.1:5000',
    destinationPrincipal: '',
    headers: new Map(Object.entries(headers)),
    method: 'GET',
    path: '/',
    host: 'svc',
    requestId: randomUUID(),
    contextExtensions: new Map(),
  };
}

const AUD = 'agent-authz';
const SVID_ISS = 'https://spire.example';
const nowS = (): number => Math.floor(Date.now() / 1000);

let server: JwksServer;
let rsa: TestKey;
let ec: TestKey;
const verifiers: JwtVerifier[] = [];

function verifier(over: Partial<JwtVerifierOptions> = {}): JwtVerifier {
  const v = new JwtVerifier({
    issuers: [
      {
        issuer: server.base,
        audiences: [AUD],
        jwks_url: server.jwksUrl,
        algorithms: ['RS256', 'ES256'],
        spiffe: false,
      },
      {
        issuer: SVID_ISS,
        audiences: [AUD],
        jwks_url: server.jwksUrl,
        algorithms: ['RS256', 'ES256'],
        spiffe: true,
      },
    ],
    clockSkewMs: 30_000,
    spiffeTrustDomains: ['example.org'],
    tokenCacheMaxEntries: 100,
    jwksRefreshIntervalMs: 60_000,
    jwksMaxStaleMs: 60_000,
    jwksCooldownMs: 30_000,
    jwksTimeoutMs: 1000,
    ...over,
  });
  verifiers.push(v);
  return v;
}

function claims(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iss: server.base,
    sub: 'agent-1',
    aud: AUD,
    exp: nowS() + 300,
    jti: randomUUID(),
    ...over,
  };
}

async function check(v: JwtVerifier, token: string, nowMs = Date.now()): Promise<CredentialResult> {
  return v.verify(factsWith({ 'x-agent-token': token }), nowMs);
}

function reasonOf(r: CredentialResult): string {
  return r.status === 'invalid' || r.status === 'unavailable'
    ? `${r.status}:${r.reason}`
    : r.status;
}

beforeAll(async () => {
  rsa = await makeKey('RS256');
  ec = await makeKey('ES256');
  server = await startJwksServer(jwksOf(rsa, ec));
});
afterEach(() => {
  for (const v of verifiers.splice(0)) v.close();
  server.setMode('up');
  server.setKeys(jwksOf(rsa, ec));
});
afterAll(() => server.close());

describe('finding the token', () => {
  it('is absent without a token, with a non-JWT x-agent-token, or a non-JWT bearer', async () => {
    const v = verifier();
    expect(await v.verify(factsWith({}), Date.now())).toEqual({ status: 'absent' });
    expect((await check(v, 'conjur-opaque-token')).status).toBe('absent');
    const facts = factsWith({ authorization: 'Bearer opaque-value' });
    expect((await v.verify(facts, Date.now())).status).toBe('absent');
  });

  it('takes a JWT from authorization: Bearer', async () => {
    const token = await rsa.sign(claims());
    const r = await verifier().verify(factsWith({ authorization: `Bearer ${token}` }), Date.now());
    expect(r.status).toBe('verified');
  });
});

describe('valid tokens', () => {
  it.each(['RS256', 'ES256'] as const)('%s → verified with an oidc lookup', async (alg) => {
    const key = alg === 'RS256' ? rsa : ec;
    const token = await key.sign(claims({ sub: `agent-${alg}` }));
    const r = await check(verifier(), token);
    expect(r).toMatchObject({
      status: 'verified',
      method: 'jwt_oidc',
      lookup: { by: 'oidc', issuer: server.base, subject: `agent-${alg}` },
      credentialRef: `${server.base}|agent-${alg}`,
    });
    expect(JSON.stringify(r)).not.toContain(token);
  });

  it('without a kid, tries each key of the right type', async () => {
    const other = await makeKey('RS256');
    server.setKeys(jwksOf(other, rsa));
    const token = await rsa.sign(claims(), { kid: undefined });
    expect((await check(verifier(), token)).status).toBe('verified');
  });
});

describe('rejected tokens', () => {
  const cases: [string, () => Promise<string>, string][] = [
    [
      'alg none',
      async () => {
        const h = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }));
        return `${h}.${base64url.encode(JSON.stringify(claims()))}.`;
      },
      'invalid:invalid_token',
    ],
    [
      'HS256 keyed with the RSA public key',
      () =>
        new SignJWT(claims())
          .setProtectedHeader({ alg: 'HS256', kid: rsa.kid })
          .sign(new TextEncoder().encode(JSON.stringify(rsa.publicJwk))),
      'invalid:invalid_token',
    ],
    ['no exp', () => rsa.sign(claims({ exp: undefined })), 'invalid:invalid_token'],
    ['expired beyond skew', () => rsa.sign(claims({ exp: nowS() - 31 })), 'invalid:invalid_token'],
    ['nbf in the future', () => rsa.sign(claims({ nbf: nowS() + 120 })), 'invalid:invalid_token'],
    ['wrong aud', () => rsa.sign(claims({ aud: 'svc-b' })), 'invalid:invalid_token'],
    ['no aud', () => rsa.sign(claims({ aud: undefined })), 'invalid:invalid_token'],
    ['no sub', () => rsa.sign(claims({ sub: undefined })), 'invalid:invalid_token'],
    ['unknown iss', () => rsa.sign(claims({ iss: 'https://evil' })), 'invalid:untrusted_issuer'],
    ['no iss', () => rsa.sign(claims({ iss: undefined })), 'invalid:invalid_token'],
    [
      'known kid, signature from another key',
      async () => (await makeKey('RS256', rsa.kid)).sign(claims()),
      'invalid:invalid_token',
    ],
    ['not base64 JSON', () => Promise.resolve('aaaa.bbbb.cccc'), 'invalid:invalid_token'],
    [
      'a megabyte token',
      () => rsa.sign(claims({ pad: 'x'.repeat(1 << 20) })),
      'invalid:invalid_token',
    ],
  ];
  const titled = cases.map(
    ([name, make, expected]) => [`${name} → ${expected}`, make, expected] as const,
  );
  it.each(titled)('%s', async (_title, make, expected) => {
    expect(reasonOf(await check(verifier(), await make()))).toBe(expected);
  });

  it('accepts a token expired within the clock skew', async () => {
    const token = await rsa.sign(claims({ exp: nowS() - 5 }));
    expect((await check(verifier(), token)).status).toBe('verified');
  });
});

describe('JWT-SVID', () => {
  const svid = (over: Record<string, unknown> = {}): Record<string, unknown> =>
    claims({ iss: SVID_ISS, sub: 'spiffe://example.org/agent/a', ...over });

  it('valid → spiffe lookup', async () => {
    const r = await check(verifier(), await ec.sign(svid(), { typ: 'JWT' }));
    expect(r).toMatchObject({
      status: 'verified',
      method: 'jwt_oidc',
      lookup: { by: 'spiffe', value: 'spiffe://example.org/agent/a' },
    });
  });

  it.each([
    ['sub not a SPIFFE ID', { sub: 'agent-a' }, {}, 'invalid:invalid_spiffe_id'],
    [
      'sub with a trailing slash',
      { sub: 'spiffe://example.org/a/' },
      {},
      'invalid:invalid_spiffe_id',
    ],
    [
      'untrusted trust domain',
      { sub: 'spiffe://example.orgx/a' },
      {},
      'invalid:untrusted_trust_domain',
    ],
    ['no aud', { aud: undefined }, {}, 'invalid:invalid_token'],
    ['typ not JWT/JOSE', {}, { typ: 'at+jwt' }, 'invalid:invalid_token'],
    ['an extra header parameter', {}, { cty: 'JWT' }, 'invalid:invalid_token'],
  ])('%s → %s', async (_name, over, header, expected) => {
    expect(reasonOf(await check(verifier(), await rsa.sign(svid(over), header)))).toBe(expected);
  });
});

describe('verified-token cache', () => {
  it('a hit is answered synchronously without touching the JWKS', async () => {
    const v = verifier();
    const token = await rsa.sign(claims());
    expect((await check(v, token)).status).toBe('verified');
    const fetches = server.jwksFetches;
    server.setMode('error');
    const hit = v.verify(factsWith({ 'x-agent-token': token }), Date.now());
    expect(hit).not.toBeInstanceOf(Promise);
    expect((hit as CredentialResult).status).toBe('verified');
    expect(server.jwksFetches).toBe(fetches);
  });

  it('is not used past exp', async () => {
    const v = verifier();
    const token = await rsa.sign(claims({ exp: nowS() + 60 }));
    expect((await check(v, token)).status).toBe('verified');
    // 2 minutes later the cached entry has expired and re-verification refuses the token.
    expect(reasonOf(await check(v, token, Date.now() + 120_000))).toBe('invalid:invalid_token');
  });

  it('is bounded by its ttl', async () => {
    const v = verifier({ tokenCacheTtlMs: 1000 });
    const token = await rsa.sign(claims());
    await check(v, token);
    expect(v.verify(factsWith({ 'x-agent-token': token }), Date.now() + 2000)).toBeInstanceOf(
      Promise,
    );
  });
});
