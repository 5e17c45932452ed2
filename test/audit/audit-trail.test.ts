// AuditTrail behaviour: non-blocking record(), bounded queue, counted drops with gap records,
// sink failures and retries, restart continuation, several writers in one file.
import { appendFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AuditTrail } from '../../src/audit/audit-trail.js';
import { GENESIS, headOfRecord } from '../../src/audit/chain.js';
import { createAuditor, NoopAuditor } from '../../src/audit/create-auditor.js';
import type { AuditSink } from '../../src/audit/sink.js';
import type { ChainHead, StoredRecord } from '../../src/audit/types.js';
import { verifyFile } from '../../src/audit/verify.js';
import {
  HMAC_KEY,
  auditCount,
  decision,
  fileTrail,
  newMetrics,
  readLines,
  silentLogger,
  tempFile,
  writeEvents,
  writeLines,
} from './helpers.js';

/** An in-memory sink whose writes can be made to fail, or to fail after storing (lost reply). */
class MemorySink implements AuditSink {
  readonly kind = 'memory';
  readonly records: StoredRecord[] = [];
  writes = 0;
  constructor(private readonly behave: (call: number) => 'ok' | 'fail' | 'store-then-fail') {}
  async readHead(): Promise<ChainHead> {
    for (let i = this.records.length - 1; i >= 0; i--) {
      const head = headOfRecord(this.records[i], 'replica-a');
      if (head !== undefined) return head;
    }
    return GENESIS;
  }
  async write(records: readonly StoredRecord[]): Promise<void> {
    const b = this.behave(++this.writes);
    if (b !== 'fail') this.records.push(...records);
    if (b !== 'ok') throw Object.assign(new Error('sink down'), { code: 'EIO' });
  }
  async close(): Promise<void> {}
  async verify() {
    const file = tempFile();
    writeLines(
      file,
      this.records.map((r) => JSON.stringify(r)),
    );
    return verifyFile(file, { hmacKey: HMAC_KEY, requireSealed: true });
  }
}

function memoryTrail(sink: MemorySink, metrics = newMetrics(), queueSize = 1000): AuditTrail {
  return new AuditTrail(
    {
      sink,
      writerId: 'replica-a',
      queueSize,
      batchSize: 4,
      hmacKey: HMAC_KEY,
      checkpointEvery: 5,
      retryDelayMs: 1,
      maxAttempts: 2,
    },
    metrics,
    silentLogger,
  );
}

describe('AuditTrail', () => {
  it('record() returns before anything is written; close() flushes every accepted event', async () => {
    const sink = new MemorySink(() => 'ok');
    const metrics = newMetrics();
    const trail = memoryTrail(sink, metrics);
    for (let i = 1; i <= 50; i++) trail.record(decision(i));
    expect(sink.writes).toBe(0);
    await trail.close();
    expect(await auditCount(metrics, 'written')).toBe(50);
    expect(await sink.verify()).toMatchObject({ ok: true, events: 50, checkpoints: 10 });
  });

  it('events that arrive during a write wait for the next linger instead of a write each', async () => {
    let release!: () => void;
    let started!: () => void;
    const firstStarted = new Promise<void>((r) => (started = r));
    class GatedSink extends MemorySink {
      override async write(records: readonly StoredRecord[]): Promise<void> {
        if (this.writes === 0) {
          started();
          await new Promise<void>((r) => (release = r));
        }
        await super.write(records);
      }
    }
    const sink = new GatedSink(() => 'ok');
    const metrics = newMetrics();
    const trail = memoryTrail(sink, metrics);
    trail.record(decision(1));
    await firstStarted;
    trail.record(decision(2));
    trail.record(decision(3));
    release();
    await new Promise((r) => setTimeout(r, 5));
    // batch size 4: the two latecomers did not go out on their own
    expect(sink.writes).toBe(1);
    trail.record(decision(4));
    await new Promise((r) => setTimeout(r, 60));
    expect(sink.writes).toBe(2);
    expect(sink.records.filter((r) => r.type === 'decision')).toHaveLength(4);
    await trail.close();
    expect(await auditCount(metrics, 'written')).toBe(4);
    expect(await sink.verify()).toMatchObject({ ok: true, events: 4 });
  });

  it('counts queue overflow and writes a gap record in its place', async () => {
    const file = tempFile();
    const metrics = newMetrics();
    await writeEvents(fileTrail(file, { metrics, queueSize: 3 }), 10);
    expect(await auditCount(metrics, 'written')).toBe(3);
    expect(await auditCount(metrics, 'dropped_overflow')).toBe(7);
    const gap = readLines(file)
      .map((l) => JSON.parse(l))
      .find((r) => r.type === 'gap');
    expect(gap).toMatchObject({ seq: 4, dropped_overflow: 7, dropped_sink_error: 0 });
    const res = await verifyFile(file, { hmacKey: HMAC_KEY, requireSealed: true });
    expect(res).toMatchObject({ ok: true, events: 3, gaps: 1, dropped: 7 });
  });

  it('counts events the sink refused, then records the gap once it recovers', async () => {
    const sink = new MemorySink((call) => (call <= 2 ? 'fail' : 'ok'));
    const metrics = newMetrics();
    await writeEvents(memoryTrail(sink, metrics), 10);
    expect(await auditCount(metrics, 'dropped_sink_error')).toBe(4); // the first batch of 4
    expect(await auditCount(metrics, 'written')).toBe(6);
    expect(sink.records[0]).toMatchObject({ type: 'gap', seq: 1, dropped_sink_error: 4 });
    expect(await sink.verify()).toMatchObject({ ok: true, events: 6, dropped: 4 });
  });

  it('counts every event as dropped when the sink never works, and close() still resolves', async () => {
    const metrics = newMetrics();
    await writeEvents(memoryTrail(new MemorySink(() => 'fail'), metrics), 9);
    expect(await auditCount(metrics, 'dropped_sink_error')).toBe(9);
    expect(await auditCount(metrics, 'written')).toBe(0);
  });

  it('replaces an event JSON cannot carry with a counted gap instead of crashing', async () => {
    const sink = new MemorySink(() => 'ok');
    const metrics = newMetrics();
    const trail = memoryTrail(sink, metrics);
    trail.record(decision(1));
    trail.record(decision(2, { path: '/bad/\ud800' })); // lone surrogate: no canonical JSON
    trail.record(decision(3));
    await trail.close();
    expect(await auditCount(metrics, 'written')).toBe(2);
    expect(await auditCount(metrics, 'dropped_sink_error')).toBe(1);
    expect(sink.records[1]).toMatchObject({ type: 'gap', seq: 2, dropped_sink_error: 1 });
    expect(await sink.verify()).toMatchObject({ ok: true, events: 2, dropped: 1 });
  });

  it('does not write a batch twice when the sink stored it but reported failure', async () => {
    const sink = new MemorySink((call) => (call === 1 ? 'store-then-fail' : 'ok'));
    const metrics = newMetrics();
    await writeEvents(memoryTrail(sink, metrics), 10);
    expect(await auditCount(metrics, 'written')).toBe(10);
    expect(await sink.verify()).toMatchObject({ ok: true, events: 10, gaps: 0 });
  });

  it('continues the chain after a restart, past other writers and a torn last line', async () => {
    const file = tempFile();
    await writeEvents(fileTrail(file), 7);
    await writeEvents(fileTrail(file, { writerId: 'replica-b' }), 3);
    await writeEvents(fileTrail(file), 4, 8);
    const idle = fileTrail(file);
    expect(await idle.checkSink()).toMatchObject({ seq: 11 });
    const before = readLines(file).length;
    await idle.close(); // nothing recorded: no extra checkpoint
    expect(readLines(file)).toHaveLength(before);
    const seqs = readLines(file)
      .map((l) => JSON.parse(l))
      .filter((r) => r.writer === 'replica-a' && r.type !== 'checkpoint')
      .map((r) => r.seq);
    expect(seqs).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(await verifyFile(file, { hmacKey: HMAC_KEY, requireSealed: true })).toMatchObject({
      ok: true,
      events: 14,
      writers: 2,
    });

    // A crash mid-write leaves a torn line: the writer goes on from its last whole record, and
    // the verifier still reports the torn line rather than hiding it.
    appendFileSync(file, '{"type":"decision","writer":"replica-a","seq":12,"pre');
    const torn = readLines(file).length;
    await writeEvents(fileTrail(file), 2, 12);
    const last = JSON.parse(readLines(file).at(-2)!);
    expect(last).toMatchObject({ writer: 'replica-a', seq: 13 });
    expect(await verifyFile(file, { hmacKey: HMAC_KEY })).toMatchObject({
      ok: false,
      code: 'malformed',
      line: torn,
    });
  });

  it('verifies several writers interleaved in one file and names the broken one', async () => {
    const file = tempFile();
    const a = fileTrail(file, { writerId: 'replica-a' });
    const b = fileTrail(file, { writerId: 'replica-b' });
    for (let i = 1; i <= 20; i++) (i % 2 === 0 ? a : b).record(decision(i));
    await Promise.all([a.close(), b.close()]);
    const res = await verifyFile(file, { hmacKey: HMAC_KEY, requireSealed: true });
    expect(res).toMatchObject({ ok: true, events: 20, writers: 2 });

    const lines = readLines(file);
    const i = lines.findIndex((l) => l.includes('"writer":"replica-b"') && l.includes('"seq":6,'));
    lines.splice(i, 1);
    writeLines(file, lines);
    const broken = await verifyFile(file, { hmacKey: HMAC_KEY });
    expect(broken).toMatchObject({ ok: false, code: 'seq_gap', seq: 6, writer: 'replica-b' });
  });

  it('rejects writer ids that would break the stream key, with a stable code', () => {
    expect(() => fileTrail(tempFile(), { writerId: 'a}b' })).toThrow(
      expect.objectContaining({ code: 'invalid_writer_id' }),
    );
  });

  it('createAuditor returns a no-op auditor for sink none and a trail otherwise', async () => {
    const base = { writerId: 'w1', queueSize: 10, batchSize: 2, checkpointEvery: 5 };
    const deps = { metrics: newMetrics(), logger: silentLogger };
    expect(createAuditor({ ...base, ...deps, sink: 'none' })).toBeInstanceOf(NoopAuditor);
    const file = tempFile();
    const auto = createAuditor({ ...base, ...deps, sink: 'auto', file });
    expect(auto).toBeInstanceOf(AuditTrail);
    auto.record(decision(1));
    await auto.close();
    expect(await verifyFile(file)).toMatchObject({ ok: true, events: 1, checkpoints: 1 });
  });
});
