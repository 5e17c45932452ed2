// Builders for the parts that live in their own modules (token verifiers, audit trail, admin API),
// kept apart so app.ts reads as the composition it is.
import type { Server } from 'node:http';
import { createAdminServer } from '../admin/admin-server.js';
import { auditOptionsFromConfig, createAuditor } from '../audit/create-auditor.js';
import type { Auditor } from '../audit/types.js';
import type { Config } from '../config/config.js';
import { ConjurVerifier } from '../credentials/conjur.js';
import type { CredentialVerifier } from '../credentials/credential.js';
import { JwtVerifier } from '../credentials/jwt.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { RegistryStore } from '../registry/registry.js';

/** jwt_oidc then conjur, each only when configured (priority 3 and 4 of SPEC §2). */
export async function buildTokenVerifiers(
  config: Config,
  metrics: Metrics,
  logger: Logger,
): Promise<CredentialVerifier[]> {
  const out: CredentialVerifier[] = [];
  if (config.jwt_issuers.length > 0) {
    const jwt = JwtVerifier.fromConfig(config, { metrics, logger });
    await jwt.warmUp(Math.min(config.jwks_timeout, 3000));
    jwt.start();
    out.push(jwt);
  }
  const conjur = ConjurVerifier.fromConfig(config, { metrics, logger });
  if (conjur !== undefined) out.push(conjur);
  return out;
}

/** The hash-chained audit trail: Redis Stream with a Redis registry, JSON-lines file otherwise. */
export async function buildAuditor(
  config: Config,
  _store: RegistryStore,
  metrics: Metrics,
  logger: Logger,
): Promise<Auditor> {
  return createAuditor(auditOptionsFromConfig(config, { metrics, logger }));
}

export function buildAdminServer(
  config: Config,
  store: RegistryStore,
  auditor: Auditor,
  _metrics: Metrics,
  logger: Logger,
): Server {
  return createAdminServer({
    store,
    auditor,
    logger,
    bootstrapDigest: config.admin_key_digest,
    bootstrapKeyId: config.admin_key_id,
  });
}
