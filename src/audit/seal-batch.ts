// Seals a batch of queued entries onto a writer's chain: one chained record per entry (a gap
// note becomes a `gap` record) and a checkpoint after every N-th record. Pure: the trail commits
// the returned head only once the sink has stored the records.
import { makeCheckpoint, sealRecord } from './chain.js';
import { GapNote, type QueueEntry } from './audit-queue.js';
import type { ChainHead, ChainedRecord, GapAuditInput, StoredRecord } from './types.js';

export interface Sealed {
  /** What to write, in order: chained records with checkpoints between them. */
  readonly records: StoredRecord[];
  /** The chained records only, one per entry (to recognise them if a failed write landed). */
  readonly chained: ChainedRecord[];
  readonly head: ChainHead;
  /** Chained records since the last checkpoint, after this batch. */
  readonly since: number;
  readonly events: number;
  /** Events that could not be serialised and were replaced by a gap record. */
  readonly unsealable: number;
}

export interface SealOptions {
  readonly writerId: string;
  readonly checkpointEvery: number;
  readonly hmacKey?: string | undefined;
}

export function sealBatch(
  entries: readonly QueueEntry[],
  from: ChainHead,
  sinceCheckpoint: number,
  opts: SealOptions,
): Sealed {
  const { writerId: writer, checkpointEvery, hmacKey } = opts;
  const records: StoredRecord[] = [];
  const chained: ChainedRecord[] = [];
  let head = from;
  let since = sinceCheckpoint;
  let events = 0;
  let unsealable = 0;
  for (const e of entries) {
    let r: ChainedRecord;
    if (e instanceof GapNote) {
      r = sealRecord(gap(e.overflow, e.sinkError), writer, head);
    } else {
      try {
        r = sealRecord(e, writer, head);
        events++;
      } catch {
        // Only a value JSON cannot represent gets here; it becomes a counted gap, not a crash.
        r = sealRecord(gap(0, 1), writer, head);
        unsealable++;
      }
    }
    records.push(r);
    chained.push(r);
    head = { seq: r.seq, hash: r.hash };
    if (++since >= checkpointEvery) {
      records.push(makeCheckpoint(writer, head, new Date().toISOString(), hmacKey));
      since = 0;
    }
  }
  return { records, chained, head, since, events, unsealable };
}

function gap(overflow: number, sinkError: number): GapAuditInput {
  const time = new Date().toISOString();
  return { type: 'gap', time, dropped_overflow: overflow, dropped_sink_error: sinkError };
}
