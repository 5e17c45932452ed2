// Prometheus metrics on a dedicated prom-client Registry. Label values come from closed sets only
// (decision, reason, identity method, mode, result): never an agent id, path or credential. Under
// --workers the primary aggregates the workers' registries: state gauges take the worst worker
// (min/max), counts are summed.
import {
  Counter,
  Gauge,
  Histogram,
  Registry,
  collectDefaultMetrics,
  type LabelValues,
} from 'prom-client';

export interface Metrics {
  readonly registry: Registry;
  readonly decisions: Counter<'decision' | 'reason' | 'identity_method' | 'mode'>;
  readonly checkDuration: Histogram<'decision'>;
  readonly inFlight: Gauge;
  readonly cacheRequests: Counter<'result'>;
  readonly cacheEvictions: Counter<'cause'>;
  readonly cacheSize: Gauge;
  readonly registryStaleness: Gauge;
  readonly redisErrors: Counter<'operation'>;
  readonly redisUp: Gauge;
  readonly invalidationChannelUp: Gauge;
  readonly invalidations: Counter<'kind'>;
  readonly idpCalls: Counter<'provider' | 'result'>;
  readonly idpDuration: Histogram<'provider'>;
  readonly auditQueueDepth: Gauge;
  readonly auditEvents: Counter<'result'>;
  readonly eventLoopLag: Gauge;
  readonly ready: Gauge;
  readonly grpcLimits: Counter<'limit'>;
  readonly grpcErrors: Counter<'error' | 'scope'>;
  readonly grpcConnections: Gauge;
  readonly grpcConnectionsAccepted: Counter;
  readonly grpcBufferedBytes: Gauge;
}

// 50 µs to 250 ms: the Check path is sub-millisecond on a cache hit and Envoy times out at 200 ms.
export const CHECK_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25,
];

export function createMetrics(opts: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false)
    collectDefaultMetrics({ register: registry, prefix: 'agent_authz_' });
  const r = [registry];
  return {
    registry,
    decisions: new Counter({
      name: 'agent_authz_decisions_total',
      help: 'Check decisions by decision, reason code, identity method and mode',
      labelNames: ['decision', 'reason', 'identity_method', 'mode'],
      registers: r,
    }),
    checkDuration: new Histogram({
      name: 'agent_authz_check_duration_seconds',
      help: 'Time from CheckRequest decoded to CheckResponse ready',
      labelNames: ['decision'],
      buckets: CHECK_BUCKETS,
      registers: r,
    }),
    inFlight: new Gauge({
      name: 'agent_authz_checks_in_flight',
      help: 'Checks waiting on a registry or identity-provider read now',
      registers: r,
    }),
    cacheRequests: new Counter({
      name: 'agent_authz_registry_cache_requests_total',
      help: 'Registry cache lookups by result (hit, negative_hit, miss, stale)',
      labelNames: ['result'],
      registers: r,
    }),
    cacheEvictions: new Counter({
      name: 'agent_authz_registry_cache_evictions_total',
      help: 'Registry cache entries removed, by cause (capacity, invalidation, flush)',
      labelNames: ['cause'],
      registers: r,
    }),
    cacheSize: new Gauge({
      name: 'agent_authz_registry_cache_entries',
      help: 'Registry cache entries',
      registers: r,
    }),
    registryStaleness: new Gauge({
      name: 'agent_authz_registry_staleness_seconds',
      help: 'Seconds since the registry was last read successfully',
      aggregator: 'max',
      registers: r,
    }),
    redisErrors: new Counter({
      name: 'agent_authz_redis_errors_total',
      help: 'Redis command failures by operation (lookup, write, subscribe, version, audit)',
      labelNames: ['operation'],
      registers: r,
    }),
    redisUp: new Gauge({
      name: 'agent_authz_redis_up',
      help: '1 when the Redis registry connection is ready',
      aggregator: 'min',
      registers: r,
    }),
    invalidationChannelUp: new Gauge({
      name: 'agent_authz_invalidation_channel_up',
      help: '1 when the registry invalidation subscription is live',
      aggregator: 'min',
      registers: r,
    }),
    invalidations: new Counter({
      name: 'agent_authz_registry_invalidations_total',
      help: 'Registry invalidations received, by kind (keys, flush, version_gap, reconnect)',
      labelNames: ['kind'],
      registers: r,
    }),
    idpCalls: new Counter({
      name: 'agent_authz_idp_requests_total',
      help: 'Calls to identity providers (jwks, oidc_discovery, conjur) by result (ok, error, timeout)',
      labelNames: ['provider', 'result'],
      registers: r,
    }),
    idpDuration: new Histogram({
      name: 'agent_authz_idp_request_duration_seconds',
      help: 'Latency of identity provider calls',
      labelNames: ['provider'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: r,
    }),
    auditQueueDepth: new Gauge({
      name: 'agent_authz_audit_queue_depth',
      help: 'Audit events waiting to be written',
      registers: r,
    }),
    auditEvents: new Counter({
      name: 'agent_authz_audit_events_total',
      help: 'Audit events by result (written, dropped_overflow, dropped_sink_error)',
      labelNames: ['result'],
      registers: r,
    }),
    eventLoopLag: new Gauge({
      name: 'agent_authz_event_loop_lag_p99_seconds',
      help: 'p99 event-loop delay over the last interval',
      aggregator: 'max',
      registers: r,
    }),
    ready: new Gauge({
      name: 'agent_authz_ready',
      help: '1 when the server is ready to decide',
      aggregator: 'min',
      registers: r,
    }),
    grpcLimits: new Counter({
      name: 'agent_authz_grpc_limit_exceeded_total',
      help: 'gRPC listener limits exceeded, by limit (docs/transport.md)',
      labelNames: ['limit'],
      registers: r,
    }),
    grpcErrors: new Counter({
      name: 'agent_authz_grpc_protocol_errors_total',
      help: 'HTTP/2 errors sent (GOAWAY or RST_STREAM), by RFC 9113 error code and scope',
      labelNames: ['error', 'scope'],
      registers: r,
    }),
    grpcConnections: new Gauge({
      name: 'agent_authz_grpc_connections',
      help: 'Open gRPC connections',
      registers: r,
    }),
    grpcConnectionsAccepted: new Counter({
      name: 'agent_authz_grpc_connections_accepted_total',
      help: 'gRPC connections accepted',
      registers: r,
    }),
    grpcBufferedBytes: new Gauge({
      name: 'agent_authz_grpc_buffered_bytes',
      help: 'Bytes the gRPC listener holds for peers (partial requests, unsent answers)',
      registers: r,
    }),
  };
}

const readHooks = new WeakMap<object, (() => void)[]>();

/**
 * Runs `fn` whenever the metric is read — a scrape, the primary collecting a worker's metrics
 * under --workers, or get() in a test — through prom-client's collect() hook.
 */
export function beforeRead(metric: Counter<string> | Gauge<string>, fn: () => void): void {
  let hooks = readHooks.get(metric);
  if (hooks === undefined) {
    const list: (() => void)[] = [];
    hooks = list;
    readHooks.set(metric, list);
    (metric as { collect?: () => void }).collect = () => {
      for (const h of list) h();
    };
  }
  hooks.push(fn);
}

/**
 * A counter child for the check path: it counts in a plain number and adds that to the counter
 * when the counter is read. prom-client builds a label hash string on every inc(), a labelled
 * child's too — a few hundred bytes of garbage and a string build per call, several per check.
 */
export function hotCounter<T extends string>(
  counter: Counter<T>,
  labels: LabelValues<T>,
): { inc(): void } {
  const slot = { n: 0 };
  beforeRead(counter, () => {
    if (slot.n === 0) return;
    const n = slot.n;
    slot.n = 0;
    counter.inc(labels, n);
  });
  return {
    inc: () => {
      slot.n++;
    },
  };
}
