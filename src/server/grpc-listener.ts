// The gRPC listener as configured: agent-authz's own h2c transport (default) or grpc-js, serving
// Check and health, with the transport's limits reported to metrics and the log.
import type { Config } from '../config/config.js';
import type { Logger } from '../observability/logger.js';
import { beforeRead, type Metrics } from '../observability/metrics.js';
import type { CheckHandler } from './check-handler.js';
import { CHECK_PATH, checkRoute } from './check-route.js';
import type { Route } from './grpc/routes.js';
import { bindGrpc, createGrpcServer } from './grpc-js-server.js';
import { ERROR_CODE_NAMES } from './h2c/frames.js';
import { LIMIT_NAMES, type TransportEvents } from './h2c/limits.js';
import { GrpcH2cServer } from './h2c/server.js';
import type { HealthService } from './health.js';

export interface GrpcListener {
  readonly port: number;
  /** Stop accepting, let in-flight calls finish, cancel what is left at the deadline. */
  close(graceMs: number): Promise<void>;
}

const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

/** Above the in-flight limit, so overload is answered with a deny rather than REFUSED_STREAM. */
export function maxConcurrentStreams(config: Config): number {
  return config.grpc_max_concurrent_streams ?? Math.max(1024, config.max_in_flight * 2);
}

export async function listenGrpc(
  config: Config,
  handler: CheckHandler,
  health: HealthService,
  metrics: Metrics,
  logger: Logger,
): Promise<GrpcListener> {
  const common = {
    keepaliveMs: config.grpc_keepalive_time,
    keepaliveTimeoutMs: config.grpc_keepalive_timeout,
    maxConnectionAgeMs: config.grpc_max_connection_age,
    maxConnectionAgeGraceMs: config.grpc_max_connection_age_grace,
    maxConcurrentStreams: maxConcurrentStreams(config),
    maxHeaderListSize: config.grpc_max_header_list_size,
  };
  if (config.grpc_transport === 'grpc-js') {
    const server = createGrpcServer(handler, health, common);
    const port = await bindGrpc(server, `${config.bind_address}:${config.grpc_port}`);
    return {
      port,
      close: (graceMs) =>
        new Promise<void>((resolve) => {
          const force = setTimeout(() => {
            server.forceShutdown();
            resolve();
          }, graceMs);
          server.tryShutdown(() => {
            clearTimeout(force);
            resolve();
          });
        }),
    };
  }
  const routes = new Map<string, Route>([[CHECK_PATH, checkRoute(handler)], ...health.h2Routes()]);
  const server = new GrpcH2cServer(
    routes,
    {
      ...common,
      maxMessageBytes: MAX_MESSAGE_BYTES,
      maxConnections: config.grpc_max_connections,
      maxBufferedBytes: config.grpc_max_buffered_bytes,
      resetBurst: config.grpc_reset_burst,
      resetRate: config.grpc_reset_rate,
      streamIdleTimeoutMs: config.grpc_stream_idle_timeout,
    },
    transportEvents(metrics, logger),
  );
  // Every series exists from the start, so a rate() or an alert sees 0 before the first event.
  for (const limit of LIMIT_NAMES) metrics.grpcLimits.inc({ limit }, 0);
  for (const error of ERROR_CODE_NAMES)
    for (const scope of ['connection', 'stream']) metrics.grpcErrors.inc({ error, scope }, 0);
  beforeRead(metrics.grpcConnections, () => metrics.grpcConnections.set(server.connectionCount));
  beforeRead(metrics.grpcBufferedBytes, () => metrics.grpcBufferedBytes.set(server.budget.used));
  const port = await server.listen(config.bind_address, config.grpc_port);
  return { port, close: (graceMs) => server.close(graceMs) };
}

function transportEvents(metrics: Metrics, logger: Logger): TransportEvents {
  return {
    limitExceeded(limit, peer, first) {
      metrics.grpcLimits.inc({ limit });
      // Once per connection: a flood must not become a flood of log lines.
      if (first) logger.warn({ limit, peer }, 'gRPC connection exceeded a limit');
    },
    errorSent(error, scope) {
      metrics.grpcErrors.inc({ error, scope });
    },
    connectionAccepted() {
      metrics.grpcConnectionsAccepted.inc();
    },
  };
}
