// Composition root: builds the registry, cache, credential verifiers, pipeline, audit trail and
// listeners from a Config, and owns start-up and graceful shutdown.
import type { Server as HttpServer } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Auditor } from '../audit/types.js';
import { Pipeline } from '../check/pipeline.js';
import type { Config } from '../config/config.js';
import { buildVerifiers } from '../credentials/index.js';
import type { CredentialVerifier } from '../credentials/credential.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { createMetrics, type Metrics } from '../observability/metrics.js';
import { CachedRegistry } from '../registry/cache.js';
import { EmbeddedStore } from '../registry/embedded-store.js';
import { RedisStore } from '../registry/redis-store.js';
import type { RegistryStore } from '../registry/registry.js';
import { CheckHandler } from './check-handler.js';
import { listenGrpc } from './grpc-listener.js';
import { HealthService } from './health.js';
import { createHttpServer, listen } from './http-server.js';
import { buildAuditor, buildAdminServer, buildTokenVerifiers } from './wiring.js';

export interface RunningApp {
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly adminPort: number | undefined;
  readonly metrics: Metrics;
  readonly store: RegistryStore;
  readonly cache: CachedRegistry;
  readonly health: HealthService;
  isReady(): boolean;
  stop(graceMs?: number): Promise<void>;
}

export interface AppDeps {
  readonly logger?: Logger;
  readonly metrics?: Metrics;
  readonly store?: RegistryStore;
}

export function buildStore(config: Config, logger?: Logger, metrics?: Metrics): RegistryStore {
  const redisConfigured =
    config.redis_url !== undefined ||
    config.redis_sentinels.length > 0 ||
    config.redis_cluster_nodes.length > 0;
  if (redisConfigured) {
    return new RedisStore(
      {
        url: config.redis_url,
        sentinels: config.redis_sentinels,
        sentinelName: config.redis_sentinel_name,
        clusterNodes: config.redis_cluster_nodes,
        password: config.redis_password,
        tls: config.redis_tls,
        commandTimeoutMs: config.redis_command_timeout,
        prefix: config.redis_key_prefix,
        versionPollMs: config.registry_version_poll,
      },
      logger,
      metrics,
    );
  }
  const store = new EmbeddedStore(config.registry_file, logger);
  if (config.registry_watch) store.watch();
  return store;
}

export async function startApp(config: Config, deps: AppDeps = {}): Promise<RunningApp> {
  const logger = deps.logger ?? createLogger(config.log_level);
  const metrics = deps.metrics ?? createMetrics();
  const store = deps.store ?? buildStore(config, logger, metrics);
  if (store instanceof RedisStore) await store.waitReady(2000);
  const cache = new CachedRegistry(
    store,
    {
      maxEntries: config.cache_max_entries,
      ttlMs: config.cache_ttl,
      negativeTtlMs: config.cache_negative_ttl,
      maxStaleMs: config.registry_max_stale,
    },
    metrics,
  );
  const tokens: CredentialVerifier[] = await buildTokenVerifiers(config, metrics, logger);
  const verifiers = buildVerifiers(config, cache, metrics, { tokens });
  const pipeline = new Pipeline({
    verifiers,
    registry: cache,
    requireAgentId: config.require_agent_id,
  });
  const auditor: Auditor = await buildAuditor(config, store, metrics, logger);
  const handler = new CheckHandler({
    pipeline,
    mode: config.mode,
    metrics,
    auditor,
    logger,
    maxInFlight: config.max_in_flight,
    budgetMs: 150,
  });
  let shuttingDown = false;
  const isReady = () => !shuttingDown && (store.ready() || cache.size > 0);
  const health = new HealthService(isReady);

  const grpcServer = await listenGrpc(config, handler, health, metrics, logger);
  const grpcPort = grpcServer.port;
  const httpServer: HttpServer = createHttpServer(metrics, isReady);
  const httpPort = await listen(httpServer, config.bind_address, config.http_port);
  const admin = config.admin_enabled
    ? buildAdminServer(config, store, auditor, metrics, logger)
    : undefined;
  const adminPort =
    admin === undefined ? undefined : await listen(admin, config.bind_address, config.admin_port);

  // Readiness follows the registry: NOT_SERVING while it cannot be read and the cache is cold.
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  const tick = setInterval(() => {
    health.set(isReady());
    metrics.ready.set(isReady() ? 1 : 0);
    metrics.cacheSize.set(cache.size);
    metrics.registryStaleness.set(cache.stalenessSeconds());
    metrics.inFlight.set(handler.active);
    metrics.eventLoopLag.set(lag.percentile(99) / 1e9);
    lag.reset();
  }, 1000);
  tick.unref();
  health.set(isReady());
  metrics.ready.set(isReady() ? 1 : 0);
  logger.info(
    {
      grpc_port: grpcPort,
      http_port: httpPort,
      admin_port: adminPort,
      registry: store.kind,
      mode: config.mode,
    },
    'agent-authz listening',
  );

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = config.shutdown_grace): Promise<void> => {
    stopping ??= (async () => {
      shuttingDown = true;
      health.set(false);
      metrics.ready.set(0);
      logger.info({ grace_ms: graceMs }, 'shutting down: NOT_SERVING, draining in-flight checks');
      if (config.shutdown_delay > 0) await new Promise((r) => setTimeout(r, config.shutdown_delay));
      health.endWatches();
      await grpcServer.close(graceMs);
      clearInterval(tick);
      lag.disable();
      await Promise.allSettled([
        new Promise((r) => httpServer.close(r)),
        admin === undefined ? Promise.resolve() : new Promise((r) => admin.close(r)),
      ]);
      httpServer.closeAllConnections();
      admin?.closeAllConnections();
      await auditor.close();
      for (const v of verifiers) await v.close?.();
      await store.close();
      logger.info('stopped');
    })();
    return stopping;
  };

  return { grpcPort, httpPort, adminPort, metrics, store, cache, health, isReady, stop };
}
