// Certificate checks for the pki and spiffe credentials with certificates minted at run time.
import { beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { PkiVerifier, acceptsFingerprint } from '../../../src/credentials/pki.js';
import { SpiffeVerifier } from '../../../src/credentials/spiffe.js';
import type { Agent } from '../../../src/registry/records.js';
import { makeFacts } from '../../helpers/facts.js';
import { createCa, issueLeaf, type TestCa } from '../../helpers/certs.js';

const facts = makeFacts;

const ID = 'spiffe://example.org/agents/alpha';
let ca: TestCa;
let other: TestCa;
const pkiOpts = (o: Partial<ConstructorParameters<typeof PkiVerifier>[0]> = {}) =>
  new PkiVerifier({
    trustedIssuers: ['CN=agent-authz test CA,O=agent-authz tests'],
    trustedCas: [],
    clockSkewMs: 30_000,
    trustXfcc: false,
    trustForwardedHeaders: false,
    ...o,
  });

beforeAll(async () => {
  ca = await createCa();
  other = await createCa('rogue CA', 'evil');
});

describe('PkiVerifier', () => {
  it('verifies a valid certificate and looks it up by the lowercase SHA-256 of the DER', async () => {
    const leaf = await issueLeaf(ca, { uris: [ID] });
    const r = pkiOpts().verify(
      facts({ sourceCertificate: leaf.pem, sourcePrincipal: ID }),
      Date.now(),
    );
    expect(r).toMatchObject({
      status: 'verified',
      method: 'pki',
      lookup: { by: 'fingerprint', value: leaf.fingerprint },
    });
    expect(leaf.fingerprint).toBe(
      new X509Certificate(leaf.pem).fingerprint256.replaceAll(':', '').toLowerCase(),
    );
  });

  it('checks the validity window on every request (expired, not yet valid, within skew)', async () => {
    const now = Date.now();
    const expired = await issueLeaf(ca, {
      uris: [ID],
      notBefore: new Date(now - 86400_000),
      notAfter: new Date(now - 60_000),
    });
    const future = await issueLeaf(ca, {
      uris: [ID],
      notBefore: new Date(now + 600_000),
      notAfter: new Date(now + 86400_000),
    });
    const v = pkiOpts();
    expect(v.verify(facts({ sourceCertificate: expired.pem }), now)).toEqual({
      status: 'invalid',
      reason: 'certificate_expired',
    });
    expect(v.verify(facts({ sourceCertificate: future.pem }), now)).toEqual({
      status: 'invalid',
      reason: 'certificate_expired',
    });
    // The same (cached) certificate flips to expired once the clock passes notAfter.
    const soon = await issueLeaf(ca, { uris: [ID], notAfter: new Date(now + 120_000) });
    expect(v.verify(facts({ sourceCertificate: soon.pem }), now).status).toBe('verified');
    expect(v.verify(facts({ sourceCertificate: soon.pem }), now + 200_000)).toMatchObject({
      reason: 'certificate_expired',
    });
    // within the 30 s skew
    expect(v.verify(facts({ sourceCertificate: soon.pem }), now + 125_000).status).toBe('verified');
  });

  it('rejects untrusted issuers; trusts by issuer CN, full DN, or CA signature', async () => {
    const rogue = await issueLeaf(other, { uris: [ID] });
    expect(pkiOpts().verify(facts({ sourceCertificate: rogue.pem }), Date.now())).toMatchObject({
      reason: 'untrusted_issuer',
    });
    const leaf = await issueLeaf(ca, { uris: [ID] });
    expect(
      pkiOpts({ trustedIssuers: ['agent-authz test CA'] }).verify(
        facts({ sourceCertificate: leaf.pem }),
        Date.now(),
      ).status,
    ).toBe('verified');
    const byCa = pkiOpts({ trustedIssuers: [], trustedCas: [new X509Certificate(ca.pem)] });
    expect(byCa.verify(facts({ sourceCertificate: leaf.pem }), Date.now()).status).toBe('verified');
    // A rogue CA with the same name is caught by the signature check.
    const sameName = await createCa('agent-authz test CA', 'agent-authz tests');
    const forged = await issueLeaf(sameName, { uris: [ID] });
    expect(byCa.verify(facts({ sourceCertificate: forged.pem }), Date.now())).toMatchObject({
      reason: 'untrusted_issuer',
    });
  });

  it('rejects two URI SANs, a CA leaf, a principal that is not the SAN, and garbage PEM', async () => {
    const v = pkiOpts();
    const two = await issueLeaf(ca, { uris: [ID, 'spiffe://example.org/agents/admin'] });
    expect(
      v.verify(facts({ sourceCertificate: two.pem, sourcePrincipal: ID }), Date.now()),
    ).toMatchObject({ reason: 'certificate_invalid' });
    const caLeaf = await issueLeaf(ca, { uris: [ID], isCa: true });
    expect(v.verify(facts({ sourceCertificate: caLeaf.pem }), Date.now())).toMatchObject({
      reason: 'certificate_invalid',
    });
    const leaf = await issueLeaf(ca, { uris: [ID] });
    expect(
      v.verify(
        facts({
          sourceCertificate: leaf.pem,
          sourcePrincipal: 'spiffe://example.org/agents/other',
        }),
        Date.now(),
      ),
    ).toMatchObject({
      reason: 'certificate_invalid',
    });
    expect(
      v.verify(
        facts({
          sourceCertificate: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
        }),
        Date.now(),
      ),
    ).toMatchObject({
      reason: 'certificate_invalid',
    });
  });

  it('ignores XFCC and the fingerprint header unless trusted; then uses the right-most Hash', async () => {
    const fp = 'ab'.repeat(32);
    const headers = new Map([
      [
        'x-forwarded-client-cert',
        `Hash=${'cd'.repeat(32)},By=spiffe://example.org/proxy;Hash=${fp};URI=${ID}`,
      ],
      ['x-client-cert-fingerprint', 'ef'.repeat(32)],
    ]);
    expect(pkiOpts().verify(facts({ headers }), Date.now()).status).toBe('absent');
    expect(pkiOpts({ trustXfcc: true }).verify(facts({ headers }), Date.now())).toMatchObject({
      lookup: { value: fp },
    });
    expect(
      pkiOpts({ trustForwardedHeaders: true }).verify(
        facts({ headers: new Map([['x-client-cert-fingerprint', 'EF:'.repeat(31) + 'EF']]) }),
        Date.now(),
      ),
    ).toMatchObject({
      lookup: { value: 'ef'.repeat(32) },
    });
  });

  it('with a TLS principal, the right-most XFCC element must name that same peer', () => {
    const fp = 'ab'.repeat(32);
    // A SAN crafted to look like an extra element (Envoy does not quote URI= values).
    const smuggled = `By=spiffe://example.org/proxy;Hash=${'cd'.repeat(32)};URI=https://x/a,Hash=${fp};URI=spiffe://example.org/agents/victim`;
    const trusting = pkiOpts({ trustXfcc: true });
    expect(
      trusting.verify(
        facts({
          sourcePrincipal: 'https://x/a',
          headers: new Map([['x-forwarded-client-cert', smuggled]]),
        }),
        Date.now(),
      ),
    ).toMatchObject({ reason: 'certificate_invalid' });
    const honest = `By=spiffe://example.org/proxy;Hash=${fp};URI=${ID}`;
    expect(
      trusting.verify(
        facts({ sourcePrincipal: ID, headers: new Map([['x-forwarded-client-cert', honest]]) }),
        Date.now(),
      ),
    ).toMatchObject({ lookup: { value: fp } });
  });

  it('refuses oversized PEM input without caching it', () => {
    const huge =
      '-----BEGIN CERTIFICATE-----\n' + 'A'.repeat(64 * 1024) + '\n-----END CERTIFICATE-----\n';
    expect(pkiOpts().verify(facts({ sourceCertificate: huge }), Date.now())).toMatchObject({
      reason: 'certificate_invalid',
    });
  });

  it('is disabled when no trusted issuer or CA is configured', async () => {
    const leaf = await issueLeaf(ca, { uris: [ID] });
    expect(
      pkiOpts({ trustedIssuers: [] }).verify(facts({ sourceCertificate: leaf.pem }), Date.now())
        .status,
    ).toBe('absent');
  });

  it('accepts the previous fingerprint only before its grace deadline', () => {
    const now = Date.parse('2026-11-23T12:00:00Z');
    const agent = {
      agent_id: 'a',
      tenant: 't',
      agent_role: 'r',
      status: 'approved',
      cert_fingerprint: 'aa'.repeat(32),
      cert_fingerprint_prev: 'bb'.repeat(32),
      cert_fingerprint_prev_expires_at: '2026-11-23T13:00:00Z',
    } as Agent;
    expect(acceptsFingerprint(agent, 'aa'.repeat(32), now)).toBe(true);
    expect(acceptsFingerprint(agent, 'bb'.repeat(32), now)).toBe(true);
    expect(acceptsFingerprint(agent, 'bb'.repeat(32), now + 3600_000)).toBe(false);
    expect(acceptsFingerprint(agent, 'cc'.repeat(32), now)).toBe(false);
  });
});

describe('SpiffeVerifier', () => {
  const v = new SpiffeVerifier({
    trustDomains: new Set(['example.org']),
    trustXfcc: false,
    trustForwardedHeaders: false,
    clockSkewMs: 30_000,
  });

  it('checks the peer certificate behind a principal: validity window and SAN = principal', async () => {
    const now = Date.now();
    const expired = await issueLeaf(ca, {
      uris: [ID],
      notBefore: new Date(now - 86400_000),
      notAfter: new Date(now - 3600_000),
    });
    expect(v.verify(facts({ sourcePrincipal: ID, sourceCertificate: expired.pem }), now)).toEqual({
      status: 'invalid',
      reason: 'certificate_expired',
    });
    const other = await issueLeaf(ca, { uris: ['spiffe://example.org/agents/other'] });
    expect(
      v.verify(facts({ sourcePrincipal: ID, sourceCertificate: other.pem }), now),
    ).toMatchObject({
      reason: 'certificate_invalid',
    });
    const good = await issueLeaf(ca, { uris: [ID] });
    expect(v.verify(facts({ sourcePrincipal: ID, sourceCertificate: good.pem }), now).status).toBe(
      'verified',
    );
  });

  it('verifies a principal in a trusted domain', () => {
    expect(v.verify(facts({ sourcePrincipal: ID }), 0)).toMatchObject({
      status: 'verified',
      lookup: { by: 'spiffe', value: ID },
    });
  });
  it.each([
    'spiffe://example.org.evil.com/x',
    'spiffe://evil-example.org/x',
    'spiffe://example.orgi/x',
    'spiffe://sub.example.org/x',
  ])('rejects look-alike trust domain %s', (id) => {
    expect(v.verify(facts({ sourcePrincipal: id }), 0)).toEqual({
      status: 'invalid',
      reason: 'untrusted_trust_domain',
    });
  });
  it('treats DNS/Subject principals as not SPIFFE, and malformed spiffe URIs as invalid', () => {
    expect(v.verify(facts({ sourcePrincipal: 'orders.example.org' }), 0).status).toBe('absent');
    expect(v.verify(facts({ sourcePrincipal: 'spiffe://example.org/a//b' }), 0)).toEqual({
      status: 'invalid',
      reason: 'invalid_spiffe_id',
    });
  });
  it('ignores spoofed x-spiffe-id / XFCC unless trusted, and the TLS principal always wins', () => {
    const headers = new Map([
      ['x-spiffe-id', 'spiffe://example.org/agents/admin'],
      ['x-forwarded-client-cert', 'URI=spiffe://example.org/agents/admin'],
    ]);
    expect(v.verify(facts({ headers }), 0).status).toBe('absent');
    expect(v.verify(facts({ headers, sourcePrincipal: ID }), 0)).toMatchObject({
      lookup: { value: ID },
    });
    const trusting = new SpiffeVerifier({
      trustDomains: new Set(['example.org']),
      trustXfcc: true,
      trustForwardedHeaders: true,
      clockSkewMs: 30_000,
    });
    expect(trusting.verify(facts({ headers }), 0)).toMatchObject({
      lookup: { value: 'spiffe://example.org/agents/admin' },
    });
  });
  it('rejects an X.509-SVID with two URI SANs even though Envoy reported only the first', async () => {
    const two = await issueLeaf(ca, { uris: [ID, 'spiffe://example.org/agents/admin'] });
    expect(
      v.verify(facts({ sourcePrincipal: ID, sourceCertificate: two.pem }), Date.now()),
    ).toMatchObject({ reason: 'certificate_invalid' });
  });
});
