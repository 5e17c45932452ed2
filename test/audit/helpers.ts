// Shared pieces for the audit tests: events, a silent logger, metric values, a trail on a file,
// and a redis-server of the test's own on a free port (never the shared one on 6379).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { AuditTrail, type AuditTrailOptions } from '../../src/audit/audit-trail.js';
import type { DecisionAuditInput } from '../../src/audit/types.js';
import { createMetrics, type Metrics } from '../../src/observability/metrics.js';

export const HMAC_KEY = 'test-hmac-key-0123456789abcdef';
export const silentLogger = pino({ level: 'silent' });

export function decision(i: number, over: Partial<DecisionAuditInput> = {}): DecisionAuditInput {
  return {
    type: 'decision',
    time: new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString(),
    decision_id: `d-${i}`,
    decision: i % 3 === 0 ? 'deny' : 'allow',
    mode: 'enforce',
    reason: i % 3 === 0 ? 'agent_not_registered' : 'allowed',
    identity_method: 'spiffe',
    agent_id: `agent-${i % 4}`,
    credential_ref: `sha256:${'ab'.repeat(32)}`,
    path: `/v1/items/${i}`,
    trace_id: undefined,
    latency_us: 100 + i,
    ...over,
  };
}

export function tempFile(name = 'audit.jsonl'): string {
  return join(mkdtempSync(join(tmpdir(), 'agent-authz-audit-')), name);
}

export function newMetrics(): Metrics {
  return createMetrics({ defaultMetrics: false });
}

/** The value of agent_authz_audit_events_total for one result label (0 when never counted). */
export async function auditCount(metrics: Metrics, result: string): Promise<number> {
  const metric = metrics.registry.getSingleMetric('agent_authz_audit_events_total');
  const data = await metric!.get();
  return data.values.find((v) => v.labels.result === result)?.value ?? 0;
}

type TrailOverrides = Partial<AuditTrailOptions> & { metrics?: Metrics };

export function fileTrail(file: string, over: TrailOverrides = {}): AuditTrail {
  const { metrics = newMetrics(), ...rest } = over;
  return new AuditTrail(
    {
      sink: 'file',
      file,
      writerId: 'replica-a',
      queueSize: 1000,
      batchSize: 4,
      hmacKey: HMAC_KEY,
      checkpointEvery: 5,
      retryDelayMs: 1,
      ...rest,
    },
    metrics,
    silentLogger,
  );
}

/** Records `n` events (numbered from `from`) and closes the trail. */
export async function writeEvents(trail: AuditTrail, n: number, from = 1): Promise<void> {
  for (let i = from; i < from + n; i++) trail.record(decision(i));
  await trail.close();
}

export function readLines(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '');
}

export function writeLines(file: string, lines: readonly string[]): void {
  writeFileSync(file, lines.map((l) => `${l}\n`).join(''));
}

/** Index of the line holding `writer`'s chained record with this seq. */
export function lineOfSeq(lines: readonly string[], seq: number, writer = 'replica-a'): number {
  return lines.findIndex((l) => {
    const r = JSON.parse(l) as { type: string; seq: number; writer: string };
    return r.type !== 'checkpoint' && r.seq === seq && r.writer === writer;
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface TestRedis {
  readonly url: string;
  readonly client: Redis;
  stop(): Promise<void>;
}

/** Starts a throwaway redis-server and waits until it answers PING. */
export async function startRedis(): Promise<TestRedis> {
  const port = await freePort();
  const proc: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  const url = `redis://127.0.0.1:${port}`;
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  client.on('error', () => undefined);
  for (let i = 0; ; i++) {
    try {
      await client.connect();
      await client.ping();
      break;
    } catch (err) {
      client.disconnect();
      if (i > 100) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url,
    client,
    async stop() {
      client.disconnect();
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    },
  };
}
