// Issue [core] end to end: the real server on 127.0.0.1:0, a redis-server the test owns, and
// CheckRequests encoded with Envoy's official protos.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createCa, issueLeaf, type TestCa, type TestLeaf } from '../helpers/certs.js';
import {
  EnvoyCheckClient,
  OfficialCheckRequest,
  metadataOf,
  reasonOf,
  setHeaders,
  type DecodedResponse,
} from '../helpers/official-envoy.js';
import { TestRedis, seedRedis } from '../helpers/redis.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const TD = 'example.org';
const id = (n: string) => `spiffe://${TD}/agents/${n}`;

let redis: TestRedis;
let srv: TestServer;
let client: EnvoyCheckClient;
let ca: TestCa;
let certAgent: TestLeaf;
let rotatedOld: TestLeaf;
let rotatedNew: TestLeaf;
let expiredOld: TestLeaf;

function registryYaml(): string {
  const future = new Date(Date.now() + 3600_000).toISOString();
  const past = new Date(Date.now() - 60_000).toISOString();
  return `
tenants: [{ tenant_id: acme }]
agents:
  - { agent_id: alpha, tenant: acme, agent_role: investigator, permitted_roles: [investigator, reader], status: approved, spiffe_id: ${id('alpha')} }
  - { agent_id: gamma, tenant: acme, agent_role: reporter, status: suspended, spiffe_id: ${id('gamma')} }
  - { agent_id: delta, tenant: acme, agent_role: reporter, status: revoked, spiffe_id: ${id('delta')} }
  - { agent_id: certy, tenant: acme, agent_role: signer, status: approved, cert_fingerprint: ${certAgent.fingerprint} }
  - { agent_id: rotor, tenant: acme, agent_role: signer, status: approved, cert_fingerprint: ${rotatedNew.fingerprint}, cert_fingerprint_prev: ${rotatedOld.fingerprint}, cert_fingerprint_prev_expires_at: '${future}' }
  - { agent_id: lapsed, tenant: acme, agent_role: signer, status: approved, spiffe_id: ${id('lapsed')}, cert_fingerprint: ${'ee'.repeat(32)}, cert_fingerprint_prev: ${expiredOld.fingerprint}, cert_fingerprint_prev_expires_at: '${past}' }
`;
}

async function check(req: Parameters<EnvoyCheckClient['check']>[0]): Promise<DecodedResponse> {
  return client.check(req);
}

function expectDeny(res: DecodedResponse, reason: string, http: number, grpc: number): void {
  expect(reasonOf(res)).toBe(reason);
  expect(res.status?.code).toBe(grpc);
  expect(res.denied_response?.status?.code).toBe(http);
  expect(JSON.parse(res.denied_response?.body ?? '{}')).toMatchObject({ reason });
  expect(res.ok_response).toBeUndefined();
}

beforeAll(async () => {
  ca = await createCa();
  certAgent = await issueLeaf(ca, { cn: 'certy' });
  rotatedOld = await issueLeaf(ca, { cn: 'rotor-old' });
  rotatedNew = await issueLeaf(ca, { cn: 'rotor-new' });
  expiredOld = await issueLeaf(ca, { uris: [id('lapsed')] });
  redis = await TestRedis.start();
  await seedRedis(redis.url, registryYaml());
  srv = await startTestServer({
    redis_url: redis.url,
    spiffe_trust_domains: TD,
    cert_trusted_issuers: 'CN=agent-authz test CA,O=agent-authz tests',
    registry_max_stale: '30s',
  });
  client = new EnvoyCheckClient(srv.address);
});

afterAll(async () => {
  client?.close();
  await srv?.stop();
  await redis?.stop();
});

describe('mesh identity against Redis', () => {
  it('allows a registered SPIFFE ID and sets the verified identity headers (overwrite)', async () => {
    const res = await check({ principal: id('alpha'), headers: { 'x-agent-id': 'alpha' } });
    expect(reasonOf(res)).toBe('allowed');
    expect(res.status?.code ?? 0).toBe(0);
    const h = setHeaders(res);
    expect(h).toMatchObject({
      'x-agent-id': 'alpha',
      'x-agent-tenant': 'acme',
      'x-agent-role': 'investigator',
      'x-agent-identity-method': 'spiffe',
    });
    expect(h['x-agent-authz-decision-id']).toMatch(/^[0-9a-f-]{36}$/);
    for (const o of res.ok_response!.headers!) expect(o.append_action).toBe(2);
    const md = metadataOf(res);
    expect(md).toMatchObject({
      agent_id: 'alpha',
      tenant: 'acme',
      identity_method: 'spiffe',
      decision: 'allow',
    });
    expect(md.decision_id).toBe(h['x-agent-authz-decision-id']);
  });

  it('allows by certificate fingerprint (pki beats the SPIFFE principal)', async () => {
    const res = await check({ certificate: certAgent.pem });
    expect(reasonOf(res)).toBe('allowed');
    expect(setHeaders(res)).toMatchObject({
      'x-agent-id': 'certy',
      'x-agent-identity-method': 'pki',
    });
  });

  it('accepts the previous fingerprint before its grace deadline and not after it', async () => {
    expect(setHeaders(await check({ certificate: rotatedOld.pem }))['x-agent-id']).toBe('rotor');
    expect(setHeaders(await check({ certificate: rotatedNew.pem }))['x-agent-id']).toBe('rotor');
    // Past the deadline the retired certificate is refused outright; its SPIFFE ID (also
    // registered) must not let it back in through the weaker credential type.
    expectDeny(await check({ certificate: expiredOld.pem }), 'certificate_retired', 401, 16);
    expectDeny(
      await check({ certificate: expiredOld.pem, principal: id('lapsed') }),
      'certificate_retired',
      401,
      16,
    );
  });

  it('denies expired and not-yet-valid certificates even when registered', async () => {
    const now = Date.now();
    const expired = await issueLeaf(ca, {
      cn: 'x',
      notBefore: new Date(now - 86400_000),
      notAfter: new Date(now - 3600_000),
    });
    const future = await issueLeaf(ca, {
      cn: 'y',
      notBefore: new Date(now + 3600_000),
      notAfter: new Date(now + 86400_000),
    });
    expectDeny(await check({ certificate: expired.pem }), 'certificate_expired', 401, 16);
    expectDeny(await check({ certificate: future.pem }), 'certificate_expired', 401, 16);
  });

  it('denies a certificate with two URI SANs although Envoy reported the first as principal', async () => {
    const two = await issueLeaf(ca, { uris: [id('alpha'), id('admin')] });
    expectDeny(
      await check({ principal: id('alpha'), certificate: two.pem }),
      'certificate_invalid',
      401,
      16,
    );
  });

  it('denies a certificate from an untrusted issuer without falling through to SPIFFE', async () => {
    const rogue = await issueLeaf(await createCa('rogue', 'evil'), { uris: [id('alpha')] });
    expectDeny(
      await check({ principal: id('alpha'), certificate: rogue.pem }),
      'untrusted_issuer',
      401,
      16,
    );
  });

  it('denies untrusted trust domains, malformed IDs and unknown agents with their codes', async () => {
    expectDeny(
      await check({ principal: 'spiffe://evil.org/agents/alpha' }),
      'untrusted_trust_domain',
      401,
      16,
    );
    expectDeny(
      await check({ principal: 'spiffe://example.org.evil.com/agents/alpha' }),
      'untrusted_trust_domain',
      401,
      16,
    );
    expectDeny(
      await check({ principal: 'spiffe://example.org/agents/../alpha' }),
      'invalid_spiffe_id',
      401,
      16,
    );
    expectDeny(await check({ principal: id('nobody') }), 'agent_not_registered', 403, 7);
    expectDeny(await check({}), 'no_credentials', 401, 16);
  });

  it('denies suspended and revoked agents', async () => {
    expectDeny(await check({ principal: id('gamma') }), 'agent_not_approved', 403, 7);
    expectDeny(await check({ principal: id('delta') }), 'agent_not_approved', 403, 7);
  });

  it('checks the requested role against permitted_roles', async () => {
    expect(
      setHeaders(await check({ principal: id('alpha'), headers: { 'x-agent-role': 'reader' } }))[
        'x-agent-role'
      ],
    ).toBe('reader');
    expectDeny(
      await check({ principal: id('alpha'), headers: { 'x-agent-role': 'admin' } }),
      'role_not_permitted',
      403,
      7,
    );
  });

  it('denies x-agent-id naming another agent than the credential', async () => {
    expectDeny(
      await check({ principal: id('alpha'), headers: { 'x-agent-id': 'beta' } }),
      'agent_id_mismatch',
      403,
      7,
    );
  });

  it('ignores spoofed x-spiffe-id and XFCC when forwarded headers are not trusted', async () => {
    const spoof = {
      'x-spiffe-id': id('alpha'),
      'x-client-cert-san': `URI:${id('alpha')}`,
      'x-forwarded-client-cert': `Hash=${certAgent.fingerprint};URI=${id('alpha')}`,
      'x-client-cert-fingerprint': certAgent.fingerprint,
    };
    expectDeny(await check({ headers: spoof }), 'no_credentials', 401, 16);
    // With a real (unregistered-but-valid) principal the spoofed headers change nothing either.
    expectDeny(
      await check({ principal: id('nobody'), headers: spoof }),
      'agent_not_registered',
      403,
      7,
    );
  });

  it('strips inbound x-agent-* and credential headers, never listing a header both set and removed', async () => {
    const res = await check({
      principal: id('alpha'),
      headers: {
        'x-agent-tenant': 'evil',
        'x-agent_id': 'root',
        'x-agent_role': 'admin',
        'x-agent-admin': 'true',
        x_agent_id: 'root',
        'x-api-key': 'aak_x.y',
        'x-agent-token': 'tok',
      },
    });
    const removed = res.ok_response!.headers_to_remove!;
    expect(removed).toEqual(
      expect.arrayContaining([
        'x-agent_id',
        'x-agent_role',
        'x-agent-admin',
        'x_agent_id',
        'x-api-key',
        'x-agent-token',
      ]),
    );
    const set = Object.keys(setHeaders(res));
    expect(set).toContain('x-agent-tenant');
    expect(setHeaders(res)['x-agent-tenant']).toBe('acme');
    for (const k of set) expect(removed).not.toContain(k);
  });

  it('denies repeated identity headers and control characters instead of guessing', async () => {
    expectDeny(
      await check({ principal: id('alpha'), headers: { 'x-agent-id': 'alpha,admin' } }),
      'malformed_header',
      401,
      16,
    );
    expectDeny(
      await check({ principal: id('alpha'), headers: { 'x-agent-role': 'reader,admin' } }),
      'malformed_header',
      401,
      16,
    );
    expectDeny(
      await check({ principal: id('alpha'), headers: { 'x-note': 'a\u0001b' } }),
      'malformed_header',
      401,
      16,
    );
  });

  it('property: arbitrary CheckRequests always get a CheckResponse, never a gRPC error', async () => {
    const T = OfficialCheckRequest();
    const header = fc.tuple(
      fc.constantFrom(
        'x-agent-id',
        'x-agent-role',
        'x-api-key',
        'x-agent-token',
        'authorization',
        'x-forwarded-client-cert',
        'x-spiffe-id',
        'traceparent',
        'x-other',
      ),
      fc.string({ maxLength: 60 }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          principal: fc.oneof(
            fc.string({ maxLength: 80 }),
            fc.constant(id('alpha')),
            fc.constant(id('gamma')),
          ),
          certificate: fc.oneof(
            fc.constant(''),
            fc.string({ maxLength: 200 }),
            fc.constant('-----BEGIN CERTIFICATE-----\n%%%'),
          ),
          headers: fc.array(header, { maxLength: 6 }),
        }),
        async (r) => {
          const res = await client.checkRaw(
            T.encode(
              T.fromObject({
                attributes: {
                  source: { principal: r.principal, certificate: r.certificate },
                  request: { http: { headers: Object.fromEntries(r.headers) } },
                },
              }),
            ).finish(),
          );
          expect(res.status).toBeDefined();
          if ((res.status?.code ?? 0) !== 0)
            expect(res.denied_response?.status?.code).toBeGreaterThanOrEqual(401);
        },
      ),
      { numRuns: 150 },
    );
    // Raw garbage on the wire too.
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (bytes) => {
        const res = await client.checkRaw(bytes);
        expect(res.status).toBeDefined();
      }),
      { numRuns: 100 },
    );
  });

  it('when Redis dies: uncached identities get registry_unavailable (503), never an allow', async () => {
    // Warm the cache for alpha, then kill Redis.
    expect(reasonOf(await check({ principal: id('alpha') }))).toBe('allowed');
    await redis.kill();
    for (let i = 0; i < 20; i++) {
      const res = await check({ principal: id(`uncached-${i}`) });
      expectDeny(res, 'registry_unavailable', 503, 14);
    }
    // A cached allow may be served within registry_max_stale.
    expect(reasonOf(await check({ principal: id('alpha') }))).toBe('allowed');
    // Revoked/suspended agents never turn into allows.
    expect(reasonOf(await check({ principal: id('gamma') }))).not.toBe('allowed');
  });
});
