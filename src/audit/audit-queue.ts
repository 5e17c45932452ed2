// The bounded in-memory queue between record() and the flusher. Events refused when it is full
// are not forgotten: their count rides on a GapNote placed where they would have been, which the
// flusher turns into a `gap` record in the chain.
import type { AuditInput } from './types.js';

/** Stands in the queue for events that were dropped before they got a sequence number. */
export class GapNote {
  constructor(
    public overflow: number,
    public sinkError: number,
  ) {}
}

export type QueueEntry = AuditInput | GapNote;

export class AuditQueue {
  private items: QueueEntry[] = [];
  private events = 0;
  private pendingOverflow = 0;

  constructor(private readonly capacity: number) {}

  /** Events waiting (gap notes are not counted and do not take capacity). */
  get depth(): number {
    return this.events;
  }

  get isEmpty(): boolean {
    return this.items.length === 0 && this.pendingOverflow === 0;
  }

  /** O(1) and never throws; false means the queue was full and the event was dropped. */
  offer(event: AuditInput): boolean {
    if (this.events >= this.capacity) {
      this.pendingOverflow++;
      return false;
    }
    this.notePendingOverflow();
    this.items.push(event);
    this.events++;
    return true;
  }

  /** Takes up to `max` entries from the front; pending overflow is noted first if nothing else. */
  take(max: number): QueueEntry[] {
    if (this.items.length === 0) this.notePendingOverflow();
    const batch = this.items.splice(0, max);
    for (const e of batch) if (!(e instanceof GapNote)) this.events--;
    return batch;
  }

  /** Puts the count of a batch the sink refused back at the front, ahead of later events. */
  requeueGap(overflow: number, sinkError: number): void {
    const first = this.items[0];
    if (first instanceof GapNote) {
      first.overflow += overflow;
      first.sinkError += sinkError;
    } else {
      this.items.unshift(new GapNote(overflow, sinkError));
    }
  }

  private notePendingOverflow(): void {
    if (this.pendingOverflow === 0) return;
    const last = this.items[this.items.length - 1];
    if (last instanceof GapNote) last.overflow += this.pendingOverflow;
    else this.items.push(new GapNote(this.pendingOverflow, 0));
    this.pendingOverflow = 0;
  }
}
