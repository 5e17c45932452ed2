// Builders for the parts that live in their own modules (token verifiers, audit trail, admin API),
// kept apart so app.ts reads as the composition it is.
import { createServer, type Server } from 'node:http';
import type { Auditor } from '../audit/types.js';
import type { Config } from '../config/config.js';
import type { CredentialVerifier } from '../credentials/credential.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { RegistryStore } from '../registry/registry.js';

export async function buildTokenVerifiers(_config: Config, _metrics: Metrics, _logger: Logger): Promise<CredentialVerifier[]> {
  return [];
}

export async function buildAuditor(_config: Config, _store: RegistryStore, _metrics: Metrics, _logger: Logger): Promise<Auditor> {
  return { record: () => undefined, close: async () => undefined };
}

export function buildAdminServer(_config: Config, _store: RegistryStore, _auditor: Auditor, _metrics: Metrics, _logger: Logger): Server {
  return createServer((_req, res) => res.writeHead(501).end());
}
