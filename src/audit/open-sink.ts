// Turns the audit options into a sink: the JSON-lines file, or a Redis Stream on a client the
// caller passes (shared, left open) or one made from a URL (owned, closed with the trail).
import { Redis } from 'ioredis';
import type { Metrics } from '../observability/metrics.js';
import { AuditError } from './chain.js';
import { FileSink } from './file-sink.js';
import { RedisStreamSink, auditStreamKey, type RedisClient } from './redis-stream-sink.js';
import type { AuditSink } from './sink.js';

export interface SinkOptions {
  /** A sink kind, or a ready-made sink (tests, or a sink of the caller's own). */
  readonly sink: 'file' | 'redis' | AuditSink;
  readonly writerId: string;
  /** JSON-lines file for sink 'file'. */
  readonly file?: string | undefined;
  /** Redis client for sink 'redis'; preferred over redisUrl. Not closed by the trail. */
  readonly redis?: RedisClient | undefined;
  /** Redis URL for sink 'redis' when no client is given; the trail owns that connection. */
  readonly redisUrl?: string | undefined;
  /** Stream key; default `<keyPrefix>:audit:{<writerId>}`. */
  readonly stream?: string | undefined;
  readonly keyPrefix?: string | undefined;
  /** Optional approximate `MAXLEN ~` for the stream; unset keeps every entry. */
  readonly streamMaxLen?: number | undefined;
}

export function openSink(opts: SinkOptions, metrics?: Metrics): AuditSink {
  if (typeof opts.sink !== 'string') return opts.sink;
  if (opts.sink === 'file') {
    if (opts.file === undefined || opts.file === '') {
      throw new AuditError('invalid_options', 'audit sink "file" needs a file path');
    }
    return new FileSink(opts.file, opts.writerId);
  }
  const key = opts.stream ?? auditStreamKey(opts.writerId, opts.keyPrefix);
  if (opts.redis !== undefined) {
    return new RedisStreamSink(
      { client: opts.redis, key, writer: opts.writerId, maxLen: opts.streamMaxLen },
      metrics,
    );
  }
  if (opts.redisUrl === undefined || opts.redisUrl === '') {
    throw new AuditError('invalid_options', 'audit sink "redis" needs a client or a URL');
  }
  // Its own connection: audit batches must not queue behind (or time out like) Check lookups,
  // and the offline queue lets a short reconnect absorb a batch instead of failing it.
  const client = new Redis(opts.redisUrl, { maxRetriesPerRequest: 2, commandTimeout: 5000 });
  client.on('error', () => undefined); // failures surface per command and are counted there
  return new RedisStreamSink(
    { client, key, writer: opts.writerId, maxLen: opts.streamMaxLen, ownsClient: true },
    metrics,
  );
}
