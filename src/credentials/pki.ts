// Credential 1, `pki`: the peer certificate Envoy forwards (include_peer_certificate), or under
// Istio the right-most XFCC Hash= when configured, or a forwarded fingerprint header only when
// forwarded headers are explicitly trusted (any client can send it otherwise).
import type { X509Certificate } from 'node:crypto';
import type { RequestFacts } from '../check/facts.js';
import type { Agent } from '../registry/records.js';
import { ABSENT, invalid, type CredentialResult, type CredentialVerifier } from './credential.js';
import { normalizeFingerprint } from './fingerprint.js';
import { checkValidity, issuedByAny, issuerMatches, parseCertificate } from './x509.js';
import { rightmostElement } from './xfcc.js';

export interface PkiOptions {
  readonly trustedIssuers: readonly string[];
  readonly trustedCas: readonly X509Certificate[];
  readonly clockSkewMs: number;
  readonly trustXfcc: boolean;
  readonly trustForwardedHeaders: boolean;
}

export class PkiVerifier implements CredentialVerifier {
  readonly kind = 'pki';
  private readonly enabled: boolean;

  constructor(private readonly opts: PkiOptions) {
    // Without a trusted issuer list or CA bundle there is nothing to check a certificate against,
    // so certificates never identify an agent by fingerprint (SPIFFE still reads the principal).
    this.enabled = opts.trustedIssuers.length > 0 || opts.trustedCas.length > 0;
  }

  verify(facts: RequestFacts, nowMs: number): CredentialResult {
    if (!this.enabled) return ABSENT;
    if (facts.sourceCertificate !== '') return this.fromPem(facts.sourceCertificate, facts, nowMs);
    if (this.opts.trustXfcc) {
      const xfcc = facts.headers.get('x-forwarded-client-cert');
      if (xfcc !== undefined) {
        const el = rightmostElement(xfcc);
        if (el === undefined) return invalid('malformed_header');
        // Envoy does not quote URI= values, so a crafted SAN could smuggle in a fake element; the
        // element our own proxy appended names the same peer as the TLS handshake.
        if (facts.sourcePrincipal !== '') {
          const uris = el.get('uri') ?? [];
          if (uris.length !== 1 || uris[0] !== facts.sourcePrincipal)
            return invalid('certificate_invalid');
        }
        const cert = el.get('cert')?.[0];
        if (cert !== undefined && cert !== '') return this.fromPem(safeDecode(cert), facts, nowMs);
        const hash = el.get('hash')?.[0];
        if (hash !== undefined) return this.fromFingerprint(hash);
      }
    }
    if (this.opts.trustForwardedHeaders) {
      const fp = facts.headers.get('x-client-cert-fingerprint');
      if (fp !== undefined) return this.fromFingerprint(fp);
    }
    return ABSENT;
  }

  private fromPem(pem: string, facts: RequestFacts, nowMs: number): CredentialResult {
    const parsed = parseCertificate(pem);
    if (!parsed.ok) return invalid('certificate_invalid');
    const cert = parsed.cert;
    if (checkValidity(cert, nowMs, this.opts.clockSkewMs) !== 'valid')
      return invalid('certificate_expired');
    const trusted =
      (this.opts.trustedIssuers.length > 0 && issuerMatches(cert, this.opts.trustedIssuers)) ||
      (this.opts.trustedCas.length > 0 && issuedByAny(cert, this.opts.trustedCas));
    if (!trusted) return invalid('untrusted_issuer');
    // X.509-SVID rules: one URI SAN at most, never a CA certificate, and the principal Envoy
    // reported must be that SAN (Envoy silently picks the first of several).
    if (cert.isCa || cert.uriSans.length > 1 || cert.hasSuspiciousSan)
      return invalid('certificate_invalid');
    if (
      facts.sourcePrincipal !== '' &&
      cert.uriSans.length === 1 &&
      facts.sourcePrincipal !== cert.uriSans[0]
    )
      return invalid('certificate_invalid');
    return matchFingerprint(cert.fingerprint);
  }

  private fromFingerprint(raw: string): CredentialResult {
    const fp = normalizeFingerprint(raw);
    return fp === undefined ? invalid('certificate_invalid') : matchFingerprint(fp);
  }
}

function matchFingerprint(fingerprint: string): CredentialResult {
  return {
    status: 'verified',
    method: 'pki',
    lookup: { by: 'fingerprint', value: fingerprint },
    credentialRef: `sha256:${fingerprint}`,
    accept: (agent: Agent, nowMs: number) => acceptsFingerprint(agent, fingerprint, nowMs),
  };
}

/** The current fingerprint always matches; the previous one only until its grace deadline. */
export function acceptsFingerprint(agent: Agent, fingerprint: string, nowMs: number): boolean {
  if (agent.cert_fingerprint === fingerprint) return true;
  if (agent.cert_fingerprint_prev !== fingerprint) return false;
  const deadline = Date.parse(agent.cert_fingerprint_prev_expires_at ?? '');
  return Number.isFinite(deadline) && nowMs < deadline;
}

function safeDecode(v: string): string {
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
}
