// Credential 2, `spiffe`: the URI SAN Envoy took from the TLS handshake (source.principal), or,
// only when configuration trusts them, the right-most XFCC URI= or a forwarded SPIFFE header.
import type { RequestFacts } from '../check/facts.js';
import { ABSENT, invalid, type CredentialResult, type CredentialVerifier } from './credential.js';
import { parseSpiffeId } from './spiffe-id.js';
import { checkValidity, parseCertificate } from './x509.js';
import { rightmostElement } from './xfcc.js';

export interface SpiffeOptions {
  readonly trustDomains: ReadonlySet<string>;
  readonly trustXfcc: boolean;
  readonly trustForwardedHeaders: boolean;
  readonly clockSkewMs: number;
}

/** The right-most XFCC element named several URI SANs: an X.509-SVID never does. */
const SEVERAL_URIS = Symbol('several URI SANs');

export class SpiffeVerifier implements CredentialVerifier {
  readonly kind = 'spiffe';

  constructor(private readonly opts: SpiffeOptions) {}

  verify(facts: RequestFacts, nowMs: number): CredentialResult {
    const candidate = this.candidate(facts);
    if (candidate === undefined) return ABSENT;
    if (candidate === SEVERAL_URIS) return invalid('invalid_spiffe_id');
    // Envoy falls back to a DNS SAN or the Subject when a certificate has no URI SAN: those are not
    // SPIFFE credentials at all. Anything that claims the spiffe scheme must parse strictly.
    if (!/^spiffe:/i.test(candidate)) return ABSENT;
    const parsed = parseSpiffeId(candidate);
    if (!parsed.ok) return invalid('invalid_spiffe_id');
    if (!this.opts.trustDomains.has(parsed.trustDomain)) return invalid('untrusted_trust_domain');
    if (facts.sourceCertificate !== '' && candidate === facts.sourcePrincipal) {
      // An X.509-SVID carries exactly one URI SAN (Envoy would have reported only the first), and
      // Envoy does not re-check validity on long-lived connections, so this request does.
      const cert = parseCertificate(facts.sourceCertificate);
      if (
        !cert.ok ||
        cert.cert.uriSans.length !== 1 ||
        cert.cert.uriSans[0] !== candidate ||
        cert.cert.isCa
      )
        return invalid('certificate_invalid');
      if (checkValidity(cert.cert, nowMs, this.opts.clockSkewMs) !== 'valid')
        return invalid('certificate_expired');
    }
    return {
      status: 'verified',
      method: 'spiffe',
      lookup: { by: 'spiffe', value: candidate },
      credentialRef: candidate,
    };
  }

  private candidate(facts: RequestFacts): string | typeof SEVERAL_URIS | undefined {
    // The TLS handshake beats any header: when Envoy saw a client certificate, headers are ignored.
    if (facts.sourcePrincipal !== '') return facts.sourcePrincipal;
    if (this.opts.trustXfcc) {
      const xfcc = facts.headers.get('x-forwarded-client-cert');
      if (xfcc !== undefined) {
        const uris = rightmostElement(xfcc)?.get('uri');
        if (uris !== undefined && uris.length > 0) {
          if (uris.length > 1) return SEVERAL_URIS;
          if (uris[0] !== '') return uris[0];
        }
      }
    }
    if (this.opts.trustForwardedHeaders) {
      const h = facts.headers.get('x-spiffe-id') ?? facts.headers.get('x-client-cert-san');
      if (h !== undefined) return h.startsWith('URI:') ? h.slice(4) : h;
    }
    return undefined;
  }
}
