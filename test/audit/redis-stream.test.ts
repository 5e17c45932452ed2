// The Redis Stream sink against a real redis-server started by this test on a free port.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditTrail } from '../../src/audit/audit-trail.js';
import { entryRecords, auditStreamKey } from '../../src/audit/redis-stream-sink.js';
import { verifyStream } from '../../src/audit/verify.js';
import { auditVerifyCommand } from '../../src/cli/audit-verify.js';
import {
  HMAC_KEY,
  auditCount,
  decision,
  newMetrics,
  silentLogger,
  startRedis,
  type TestRedis,
} from './helpers.js';
import type { Metrics } from '../../src/observability/metrics.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

function streamTrail(
  writerId: string,
  over: { metrics?: Metrics; stream?: string; streamMaxLen?: number } = {},
) {
  const { metrics = newMetrics(), ...rest } = over;
  return new AuditTrail(
    {
      sink: 'redis',
      redis: redis.client,
      writerId,
      queueSize: 1000,
      batchSize: 8,
      hmacKey: HMAC_KEY,
      checkpointEvery: 10,
      ...rest,
    },
    metrics,
    silentLogger,
  );
}

async function write(trail: AuditTrail, n: number, from = 1): Promise<void> {
  for (let i = from; i < from + n; i++) trail.record(decision(i));
  await trail.close();
}

describe('Redis Stream audit sink', () => {
  it('writes a verifiable chain to a per-writer stream key and continues it after a restart', async () => {
    const key = auditStreamKey('pod-1');
    expect(key).toBe('agent-authz:audit:{pod-1}');
    const metrics = newMetrics();
    await write(streamTrail('pod-1', { metrics }), 25);
    await write(streamTrail('pod-1'), 5, 26);
    expect(await auditCount(metrics, 'written')).toBe(25);
    const res = await verifyStream(redis.client, key, { hmacKey: HMAC_KEY, requireSealed: true });
    expect(res).toMatchObject({ ok: true, events: 30, writers: 1, checkpoints: 4 });
    // One entry per flushed batch, its records newline-separated in chain order.
    const lines = (await redis.client.xrange(key, '-', '+')).flatMap(([, f]) => entryRecords(f));
    const decisions = lines.map((l) => JSON.parse(l)).filter((r) => r.type === 'decision');
    expect(decisions.map((r) => r.seq)).toHaveLength(30);
    expect(decisions[decisions.length - 1]).toMatchObject({ type: 'decision', latency_us: 130 });
  });

  it('stores multi-byte text byte for byte: each batch is one entry whose lines verify', async () => {
    // The batch goes to Redis as one Buffer sized from each line's UTF-8 length: paths with 2-,
    // 3- and 4-byte characters must come back whole, in order, with their hashes intact.
    const key = auditStreamKey('pod-utf8');
    const paths = ['/café', '/日本/ü', '/emoji/🙂', '/plain', '/ß'];
    const trail = streamTrail('pod-utf8');
    for (let i = 1; i <= 20; i++)
      trail.record(decision(i, { path: `${paths[i % paths.length]!}/${i}` }));
    await trail.close();
    const res = await verifyStream(redis.client, key, { hmacKey: HMAC_KEY, requireSealed: true });
    expect(res).toMatchObject({ ok: true, events: 20 });
    const lines = (await redis.client.xrange(key, '-', '+')).flatMap(([, f]) => entryRecords(f));
    const got = lines
      .map((l) => JSON.parse(l) as { type: string; path?: string })
      .filter((r) => r.type === 'decision')
      .map((r) => r.path);
    expect(got).toEqual(
      Array.from({ length: 20 }, (_, k) => `${paths[(k + 1) % paths.length]!}/${k + 1}`),
    );
  });

  it('detects a deleted entry (XDEL) as seq_gap and a rewritten entry as hash_mismatch', async () => {
    const key = auditStreamKey('pod-2');
    await write(streamTrail('pod-2'), 12);
    const entries = await redis.client.xrange(key, '-', '+');
    const seqs = (f: string[]) =>
      entryRecords(f).map((l) => JSON.parse(l) as { seq: number; type: string });
    const victim = entries.find(([, f]) =>
      seqs(f).some((r) => r.seq === 6 && r.type === 'decision'),
    )!;
    const firstLost = Math.min(
      ...seqs(victim[1])
        .filter((r) => r.type !== 'checkpoint')
        .map((r) => r.seq),
    );
    await redis.client.xdel(key, victim[0]);
    expect(await verifyStream(redis.client, key, { hmacKey: HMAC_KEY })).toMatchObject({
      ok: false,
      code: 'seq_gap',
      seq: firstLost,
    });

    // Streams cannot be edited in place: a forger copies the stream with one record changed.
    const intact = auditStreamKey('pod-2f');
    await write(streamTrail('pod-2f'), 12);
    const copy = `${intact}:forged`;
    for (const [, f] of await redis.client.xrange(intact, '-', '+')) {
      await redis.client.xadd(
        copy,
        '*',
        f[0]!,
        f[1]!.replace('"latency_us":103', '"latency_us":1'),
      );
    }
    expect(await verifyStream(redis.client, copy, { hmacKey: HMAC_KEY })).toMatchObject({
      ok: false,
      code: 'hash_mismatch',
      seq: 3,
    });
  });

  it('keeps several writers on one shared stream apart', async () => {
    const stream = 'agent-authz:audit:{shared}';
    const a = streamTrail('pod-a', { stream });
    const b = streamTrail('pod-b', { stream });
    for (let i = 1; i <= 30; i++) (i % 3 === 0 ? a : b).record(decision(i));
    await Promise.all([a.close(), b.close()]);
    await write(streamTrail('pod-a', { stream }), 3, 31); // restart pages back past pod-b's entries
    const res = await verifyStream(redis.client, stream, {
      hmacKey: HMAC_KEY,
      requireSealed: true,
    });
    expect(res).toMatchObject({ ok: true, events: 33, writers: 2 });
  });

  it('trims with MAXLEN ~ and verifies the retained part when trimming is allowed', async () => {
    const key = auditStreamKey('pod-t');
    await write(streamTrail('pod-t', { streamMaxLen: 20 }), 600);
    // MAXLEN counts entries, and an entry is a batch.
    expect(await redis.client.xlen(key)).toBeLessThan(75);
    expect(await verifyStream(redis.client, key, { hmacKey: HMAC_KEY })).toMatchObject({
      ok: false,
      code: 'seq_gap',
    });
    const res = await verifyStream(redis.client, key, {
      hmacKey: HMAC_KEY,
      allowTrimmedHead: true,
    });
    expect(res.ok && res.warnings.map((w) => w.code)).toEqual(['trimmed_head']);
  });

  it('counts a Redis outage as dropped_sink_error and redis_errors{operation="audit"}', async () => {
    const down = new Redis('redis://127.0.0.1:1', { lazyConnect: true, enableOfflineQueue: false });
    const metrics = newMetrics();
    const trail = new AuditTrail(
      {
        sink: 'redis',
        redis: down,
        writerId: 'pod-down',
        queueSize: 100,
        batchSize: 4,
        checkpointEvery: 10,
        retryDelayMs: 1,
        maxAttempts: 2,
      },
      metrics,
      silentLogger,
    );
    await write(trail, 6);
    down.disconnect();
    expect(await auditCount(metrics, 'dropped_sink_error')).toBe(6);
    expect(await auditCount(metrics, 'written')).toBe(0);
    const errors = await metrics.redisErrors.get();
    expect(errors.values.find((v) => v.labels.operation === 'audit')?.value).toBeGreaterThan(0);
  });

  it('audit verify CLI reads a stream by writer id', async () => {
    await write(streamTrail('pod-cli'), 4);
    let out = '';
    const sink = { write: (s: string) => ((out += s), true) } as unknown as NodeJS.WritableStream;
    process.env.TEST_AUDIT_KEY = HMAC_KEY;
    const args = [
      '--redis-url',
      redis.url,
      '--writer',
      'pod-cli',
      '--hmac-key-env',
      'TEST_AUDIT_KEY',
    ];
    expect(await auditVerifyCommand(args, sink)).toBe(0);
    expect(out).toBe('OK: 4 events, 1 writers, 1 checkpoints\n');
  });
});
