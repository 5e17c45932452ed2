// Picks the auditor the configuration asks for: a hash-chained AuditTrail on a file or a Redis
// Stream, or a no-op one when auditing is switched off (sink `none`).
import type { Config } from '../config/config.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { AuditTrail, type AuditTrailOptions } from './audit-trail.js';
import type { RedisClient } from './redis-stream-sink.js';
import type { AuditSink } from './sink.js';
import type { AuditInput, Auditor } from './types.js';

export interface CreateAuditorOptions extends Omit<AuditTrailOptions, 'sink'> {
  /** 'auto' is Redis when a client or URL is given, the file otherwise. */
  readonly sink: 'auto' | 'file' | 'redis' | 'none' | AuditSink;
  readonly metrics: Metrics;
  readonly logger: Logger;
}

/** Used for sink `none`: records nothing, and says so once rather than pretending. */
export class NoopAuditor implements Auditor {
  record(_event: AuditInput): void {}
  async close(): Promise<void> {}
}

export function createAuditor(opts: CreateAuditorOptions): Auditor {
  const { metrics, logger, sink, ...rest } = opts;
  if (sink === 'none') {
    logger.warn({ code: 'audit_disabled' }, 'audit sink is "none": decisions are not audited');
    return new NoopAuditor();
  }
  const kind =
    sink === 'auto'
      ? rest.redis !== undefined || rest.redisUrl !== undefined
        ? 'redis'
        : 'file'
      : sink;
  if (rest.hmacKey === undefined) {
    logger.warn(
      { code: 'audit_unsigned' },
      'no audit HMAC key: checkpoints are unsigned and a rewritten chain cannot be told apart',
    );
  }
  return new AuditTrail({ ...rest, sink: kind }, metrics, logger);
}

/**
 * The auditor options from the server configuration. Pass the Redis client to share it (a
 * dedicated connection is better: audit batches are large); without one, `redis_url` is used.
 */
export function auditOptionsFromConfig(
  config: Config,
  deps: { metrics: Metrics; logger: Logger; redis?: RedisClient | undefined },
): CreateAuditorOptions {
  return {
    sink: config.audit_sink,
    writerId: config.audit_writer_id,
    file: config.audit_file,
    redis: deps.redis,
    redisUrl: config.redis_url,
    stream: config.audit_stream,
    keyPrefix: config.redis_key_prefix,
    queueSize: config.audit_queue_size,
    batchSize: config.audit_batch_size,
    hmacKey: config.audit_hmac_key,
    checkpointEvery: config.audit_checkpoint_every,
    metrics: deps.metrics,
    logger: deps.logger,
  };
}
