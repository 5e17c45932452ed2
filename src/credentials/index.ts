// The credential priority list (SPEC §2): the strongest credential kind comes first.
import { readFileSync } from 'node:fs';
import type { Config } from '../config/config.js';
import type { Metrics } from '../observability/metrics.js';
import type { RegistryReader } from '../registry/registry.js';
import { ApiKeyVerifier } from './api-key.js';
import type { CredentialVerifier } from './credential.js';
import { PkiVerifier } from './pki.js';
import { SpiffeVerifier } from './spiffe.js';
import { loadCaBundle } from './x509.js';

export interface ExtraVerifiers {
  /** jwt_oidc and conjur verifiers, in that order, built by their own modules. */
  readonly tokens: readonly CredentialVerifier[];
}

export function buildVerifiers(
  config: Config,
  registry: RegistryReader,
  _metrics: Metrics | undefined,
  extra: ExtraVerifiers = { tokens: [] },
): CredentialVerifier[] {
  const trustedCas =
    config.cert_trusted_ca_file === undefined
      ? []
      : loadCaBundle(readFileSync(config.cert_trusted_ca_file, 'utf8'));
  return [
    new PkiVerifier({
      trustedIssuers: config.cert_trusted_issuers,
      trustedCas,
      clockSkewMs: config.cert_clock_skew,
      trustXfcc: config.trust_xfcc,
      trustForwardedHeaders: config.trust_forwarded_headers,
    }),
    new SpiffeVerifier({
      trustDomains: new Set(config.spiffe_trust_domains),
      trustXfcc: config.trust_xfcc,
      trustForwardedHeaders: config.trust_forwarded_headers,
      clockSkewMs: config.cert_clock_skew,
    }),
    ...extra.tokens,
    new ApiKeyVerifier(registry),
  ];
}
