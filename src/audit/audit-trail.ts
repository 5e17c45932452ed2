// The audit trail: record() only enqueues (a decision never waits on audit I/O); a background
// flusher seals batches onto this writer's hash chain and writes them to the sink. Events are
// dropped only before they get a sequence number, and every drop is counted, logged and written
// into the chain as a `gap` record, so the chain stays verifiable and the loss stays visible.
import type { Logger } from '../observability/logger.js';
import { beforeRead, type Metrics } from '../observability/metrics.js';
import { AuditError, GENESIS, assertWriterId, makeCheckpoint } from './chain.js';
import { AuditQueue, GapNote, type QueueEntry } from './audit-queue.js';
import { DropLog } from './drop-log.js';
import { openSink, type SinkOptions } from './open-sink.js';
import { sealBatch, type Sealed } from './seal-batch.js';
import type { AuditSink } from './sink.js';
import type { AuditInput, Auditor, ChainHead, ChainedRecord } from './types.js';

export interface AuditTrailOptions extends SinkOptions {
  readonly queueSize: number;
  readonly batchSize: number;
  /** Signs checkpoints; without it checkpoints are unsigned and the chain unauthenticated. */
  readonly hmacKey?: string | undefined;
  /** A checkpoint after every this many chained records (and one at close). */
  readonly checkpointEvery: number;
  /** First back-off after a failed write; doubles per attempt. Default 200 ms. */
  readonly retryDelayMs?: number;
  /** Writes tried per batch before its events are dropped. Default 3. */
  readonly maxAttempts?: number;
}

/** How long a partly filled batch may wait for more events before it is written. */
const LINGER_MS = 20;
/** Records sealed per event-loop turn (each costs a few microseconds). */
const SEAL_SLICE = 32;

export class AuditTrail implements Auditor {
  private readonly queue: AuditQueue;
  private readonly sink: AuditSink;
  private readonly drops: DropLog;
  /** Where the chain ends on the sink; undefined until read, and again after a failed write. */
  private head: ChainHead | undefined;
  private sinceCheckpoint = 0;
  /** The last sealed batch whose write failed: it may have landed after all. */
  private unconfirmed: readonly ChainedRecord[] = [];
  private flushing: Promise<void> | undefined;
  private state: 'open' | 'closing' | 'closed' = 'open';
  private closed: Promise<void> | undefined;
  /** The last batch was dropped; while closing, do not spend back-off time on a dead sink. */
  private sinkDown = false;

  constructor(
    private readonly opts: AuditTrailOptions,
    private readonly metrics: Metrics,
    logger: Logger,
  ) {
    assertWriterId(opts.writerId);
    for (const k of ['queueSize', 'batchSize', 'checkpointEvery'] as const) {
      if (!Number.isSafeInteger(opts[k]) || opts[k] < 1) {
        throw new AuditError('invalid_options', `audit ${k} must be a positive integer`);
      }
    }
    this.queue = new AuditQueue(opts.queueSize);
    this.sink = openSink(opts, metrics);
    this.drops = new DropLog(logger);
    // Read when scraped rather than set on every event (a gauge set hashes its labels too).
    beforeRead(metrics.auditQueueDepth, () => metrics.auditQueueDepth.set(this.queue.depth));
  }

  record(event: AuditInput): void {
    // After close() nothing will write it, so it is counted as dropped rather than queued.
    if (this.state === 'closed' || !this.queue.offer(event)) {
      this.metrics.auditEvents.inc({ result: 'dropped_overflow' });
      this.drops.add('overflow', 1);
      return;
    }
    this.kick();
  }

  /**
   * Start-up probe: reads where this writer's chain ends, so the server can log it (or refuse to
   * start) before the first event. Not required: the flusher reads the head itself.
   */
  async checkSink(): Promise<ChainHead> {
    return this.sink.readHead();
  }

  /** Writes everything accepted so far, then a final checkpoint, then closes the sink. */
  close(): Promise<void> {
    this.closed ??= this.shutdown();
    return this.closed;
  }

  private async shutdown(): Promise<void> {
    this.state = 'closing';
    // Events recorded while closing are still written; a gap note alone that the sink keeps
    // refusing does not hold shutdown up (its count is already in the metric and the log).
    do {
      this.kick();
      await this.flushing;
    } while (this.flushing !== undefined || this.queue.depth > 0);
    this.state = 'closed';
    await this.finalCheckpoint();
    await this.sink.close().catch((err: unknown) => this.drops.sinkError(err));
    this.drops.flush();
  }

  private kick(): void {
    if (this.flushing !== undefined) return;
    // record() must return before any hashing or I/O starts. Under load, lingering a few
    // milliseconds gathers full batches: one write per batch instead of one per loop turn (the
    // per-write cost dominated the audit's share of a Check). A full batch or shutdown goes now.
    const now = this.state !== 'open' || this.queue.depth >= this.opts.batchSize;
    this.flushing = new Promise<void>((resolve) => {
      if (now) setImmediate(resolve);
      else setTimeout(resolve, LINGER_MS);
    })
      .then(() => this.drain())
      .catch((err: unknown) => this.drops.sinkError(err))
      .finally(() => {
        this.flushing = undefined;
        if (this.queue.depth > 0 && this.state !== 'closed') this.kick();
      });
  }

  private async drain(): Promise<void> {
    while (!this.queue.isEmpty) {
      const batch = this.queue.take(this.opts.batchSize);
      const written = await this.writeBatch(batch);
      // Only a gap note is left and the sink is down: wait for the next event (or close).
      if (!written && batch.every((e) => e instanceof GapNote)) return;
      // What arrived during the write goes on now only as a full batch; a few events wait for
      // the next linger (kick) instead of costing a write each (at 2 000 checks/s, writes went
      // out with ~13 events each instead of ~40).
      if (this.state === 'open' && this.queue.depth < this.opts.batchSize) return;
    }
  }

  private async writeBatch(batch: QueueEntry[]): Promise<boolean> {
    const maxAttempts =
      this.state === 'closing' && this.sinkDown ? 1 : (this.opts.maxAttempts ?? 3);
    let entries = batch;
    for (let attempt = 1; ; attempt++) {
      let sealed: Sealed | undefined;
      try {
        if (this.head === undefined) {
          this.head = await this.sink.readHead();
          entries = this.dropLanded(entries, this.head);
          if (entries.length === 0) return true;
        }
        sealed = await this.seal(entries, this.head);
        await this.sink.write(sealed.records);
      } catch (err) {
        this.head = undefined;
        this.unconfirmed = sealed?.chained ?? this.unconfirmed;
        this.drops.sinkError(err);
        if (attempt >= maxAttempts) {
          this.dropBatch(entries);
          return false;
        }
        await sleep((this.opts.retryDelayMs ?? 200) * 2 ** (attempt - 1));
        continue;
      }
      this.commit(sealed);
      return true;
    }
  }

  /**
   * Seals a batch a slice at a time, yielding to the event loop between slices: hashing a full
   * batch in one go would hold up every Check that arrived meanwhile (a p99 spike every flush).
   */
  private async seal(entries: readonly QueueEntry[], from: ChainHead): Promise<Sealed> {
    let out = sealBatch(entries.slice(0, SEAL_SLICE), from, this.sinceCheckpoint, this.opts);
    for (let at = SEAL_SLICE; at < entries.length; at += SEAL_SLICE) {
      await new Promise((resolve) => setImmediate(resolve));
      const next = sealBatch(entries.slice(at, at + SEAL_SLICE), out.head, out.since, this.opts);
      out = {
        records: out.records.concat(next.records),
        chained: out.chained.concat(next.chained),
        head: next.head,
        since: next.since,
        events: out.events + next.events,
        unsealable: out.unsealable + next.unsealable,
      };
    }
    return out;
  }

  private commit(s: Sealed): void {
    this.head = s.head;
    this.sinkDown = false;
    this.sinceCheckpoint = s.since;
    this.unconfirmed = [];
    if (s.events > 0) this.metrics.auditEvents.inc({ result: 'written' }, s.events);
    if (s.unsealable > 0) {
      this.metrics.auditEvents.inc({ result: 'dropped_sink_error' }, s.unsealable);
      this.drops.add('sink_error', s.unsealable);
    }
  }

  /**
   * After a failed write, the re-read head may show that the batch (or its first part) was stored
   * after all (lost reply, partial file write): those entries are done and must not be re-sealed.
   */
  private dropLanded(entries: QueueEntry[], head: ChainHead): QueueEntry[] {
    const tried = this.unconfirmed;
    this.unconfirmed = [];
    const first = tried[0];
    if (first === undefined || head.seq < first.seq) return entries;
    const i = head.seq - first.seq;
    if (tried[i]?.hash !== head.hash || i >= entries.length) return entries;
    const landed = tried.slice(0, i + 1).filter((r) => r.type !== 'gap').length;
    if (landed > 0) this.metrics.auditEvents.inc({ result: 'written' }, landed);
    this.sinceCheckpoint += i + 1;
    return entries.slice(i + 1);
  }

  private dropBatch(entries: readonly QueueEntry[]): void {
    this.unconfirmed = [];
    this.sinkDown = true;
    let overflow = 0;
    let lost = 0;
    for (const e of entries) {
      if (e instanceof GapNote) {
        overflow += e.overflow;
        lost += e.sinkError;
      } else {
        lost++;
      }
    }
    const events = entries.filter((e) => !(e instanceof GapNote)).length;
    if (events > 0) this.metrics.auditEvents.inc({ result: 'dropped_sink_error' }, events);
    this.drops.add('sink_error', events);
    this.queue.requeueGap(overflow, lost);
  }

  private async finalCheckpoint(): Promise<void> {
    // Nothing written since the last checkpoint (or since start): a restart adds no checkpoint.
    if (this.sinceCheckpoint === 0) return;
    try {
      this.head ??= await this.sink.readHead();
      if (this.head.seq === GENESIS.seq) return;
      const cp = makeCheckpoint(
        this.opts.writerId,
        this.head,
        new Date().toISOString(),
        this.opts.hmacKey,
      );
      await this.sink.write([cp]);
      this.sinceCheckpoint = 0;
    } catch (err) {
      this.drops.sinkError(err);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
