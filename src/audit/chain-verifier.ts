// Checks stored audit records, in stored order, against their writers' hash chains and signed
// checkpoints, and reports the first record that was altered, removed or reordered.
//
// What it detects: a changed field (hash_mismatch); a removed record (seq_gap); records moved or
// replayed (out_of_order); a record spliced in from elsewhere (prev_hash_mismatch); a checkpoint
// forged or altered without the key (checkpoint_invalid) or left pointing at a rewritten chain
// (checkpoint_mismatch); events removed while a later checkpoint still attests them (truncated).
// What it cannot detect from the log alone: the tail cut back to (or just after) a checkpoint,
// checkpoints included. Only a copy of the newest checkpoint kept elsewhere closes that gap;
// `requireSealed` helps for logs of writers that shut down cleanly (their chain must end with a
// checkpoint). Without the HMAC key a consistent rewrite of a whole chain also goes unnoticed,
// which is why the result then carries an `unauthenticated` warning.
import { GENESIS_HASH, checkpointMacValid, isHex64, parseRecord, recordHash } from './chain.js';
import { failure, summarize, type Location, type WriterState } from './verify-summary.js';
import type { VerifyFailure, VerifyOptions, VerifyResult } from './verify-result.js';

const CHAINED_TYPES = new Set(['decision', 'admin', 'gap']);

export class ChainVerifier {
  private readonly writers = new Map<string, WriterState>();
  private failure: VerifyFailure | undefined;
  /** After a seq jump: is the missing record further on (reordered) or gone (deleted)? */
  private lookFor: { writer: string; seq: number } | undefined;
  private events = 0;
  private checkpoints = 0;
  private gaps = 0;
  private dropped = 0;

  constructor(private readonly opts: VerifyOptions = {}) {}

  /** False once the outcome is known and further records cannot change it. */
  get wantsMore(): boolean {
    return this.failure === undefined || this.lookFor !== undefined;
  }

  push(text: string, loc: Location): void {
    const r = parseRecord(text);
    if (this.lookFor !== undefined) {
      if (r?.writer === this.lookFor.writer && r.seq === this.lookFor.seq && isChained(r)) {
        this.failure = { ...this.failure!, code: 'out_of_order' };
        this.lookFor = undefined;
      }
      return;
    }
    if (this.failure !== undefined) return;
    if (r === undefined || typeof r.writer !== 'string' || !isSeq(r.seq)) {
      return this.fail(
        'malformed',
        loc,
        guessSeq(text),
        'not an audit record (JSON object with writer and seq)',
      );
    }
    const writer = r.writer;
    const st = this.writers.get(writer) ?? this.newWriter(writer);
    if (r.type === 'checkpoint') this.checkpoint(r, r.seq, st, writer, loc);
    else if (isChained(r)) this.chained(r, r.seq, st, writer, loc);
    else this.fail('malformed', loc, r.seq, `unknown record type ${String(r.type)}`, writer);
  }

  finish(): VerifyResult {
    if (this.failure !== undefined) return this.failure;
    const { events, checkpoints, gaps, dropped } = this;
    return summarize(this.writers, { events, checkpoints, gaps, dropped }, this.opts);
  }

  private chained(
    r: Record<string, unknown>,
    seq: number,
    st: WriterState,
    writer: string,
    loc: Location,
  ): void {
    if (!isHex64(r.hash) || !isHex64(r.prev_hash)) {
      return this.fail('malformed', loc, seq, 'hash or prev_hash is not 64 hex digits', writer);
    }
    if (recordHash(r) !== r.hash) {
      return this.fail(
        'hash_mismatch',
        loc,
        seq,
        'record content does not match its hash (modified)',
        writer,
      );
    }
    if (!st.started && seq > 1 && this.opts.allowTrimmedHead === true) {
      // A trimmed stream: history before this record is gone and cannot be checked.
      this.adoptHead(st, seq - 1, r.prev_hash);
    }
    st.started = true;
    if (seq <= st.seq) {
      return this.fail('out_of_order', loc, seq, `seq ${seq} appears after seq ${st.seq}`, writer);
    }
    if (seq > st.seq + 1) {
      this.lookFor = { writer, seq: st.seq + 1 };
      return this.fail(
        'seq_gap',
        loc,
        st.seq + 1,
        `expected seq ${st.seq + 1}, found ${seq}`,
        writer,
      );
    }
    if (r.prev_hash !== st.hash) {
      return this.fail(
        'prev_hash_mismatch',
        loc,
        seq,
        'prev_hash does not match the previous record',
        writer,
      );
    }
    st.seq = seq;
    st.hash = r.hash;
    if (r.type === 'gap') {
      this.gaps++;
      this.dropped += count(r.dropped_overflow) + count(r.dropped_sink_error);
    } else {
      this.events++;
    }
    const due = st.pending.filter((p) => p.seq === seq);
    st.pending = st.pending.filter((p) => p.seq !== seq);
    for (const p of due) {
      if (p.hash !== st.hash)
        return this.fail(
          'checkpoint_mismatch',
          p.loc,
          seq,
          'checkpoint does not match the chain',
          writer,
        );
      st.lastCheckpointSeq = seq;
    }
  }

  private checkpoint(
    r: Record<string, unknown>,
    seq: number,
    st: WriterState,
    writer: string,
    loc: Location,
  ): void {
    if (!isHex64(r.head_hash) || typeof r.time !== 'string') {
      return this.fail('malformed', loc, seq, 'checkpoint lacks head_hash or time', writer);
    }
    // Signature first: a forged checkpoint is the more specific finding than where it sits.
    if (this.opts.hmacKey !== undefined && !checkpointMacValid(this.opts.hmacKey, r)) {
      return this.fail(
        'checkpoint_invalid',
        loc,
        seq,
        'checkpoint HMAC is missing or wrong',
        writer,
      );
    }
    this.checkpoints++;
    if (!st.started && this.opts.allowTrimmedHead === true) {
      // A trimmed stream that starts with a checkpoint: anchor the chain there.
      this.adoptHead(st, seq, r.head_hash);
      return;
    }
    if (seq < st.seq) {
      return this.fail(
        'out_of_order',
        loc,
        seq,
        `checkpoint for seq ${seq} appears after seq ${st.seq}`,
        writer,
      );
    }
    if (seq > st.seq) {
      st.pending.push({ seq, hash: r.head_hash, loc });
      return;
    }
    if (r.head_hash !== st.hash) {
      return this.fail(
        'checkpoint_mismatch',
        loc,
        seq,
        'checkpoint does not match the chain',
        writer,
      );
    }
    st.lastCheckpointSeq = seq;
  }

  private adoptHead(st: WriterState, seq: number, hash: string): void {
    st.started = true;
    st.seq = seq;
    st.hash = hash;
    st.lastCheckpointSeq = seq;
    st.trimmedAt = seq;
  }

  private newWriter(writer: string): WriterState {
    const st: WriterState = {
      seq: 0,
      hash: GENESIS_HASH,
      started: false,
      lastCheckpointSeq: 0,
      pending: [],
    };
    this.writers.set(writer, st);
    return st;
  }

  private fail(
    code: VerifyFailure['code'],
    loc: Location,
    seq: number | undefined,
    message: string,
    writer?: string,
  ): void {
    this.failure = failure(code, loc, seq, message, writer);
  }
}

function isSeq(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;
}

function isChained(r: Record<string, unknown>): boolean {
  return typeof r.type === 'string' && CHAINED_TYPES.has(r.type);
}

function count(v: unknown): number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : 0;
}

/** Best effort, for the report only: the seq a damaged line seems to have carried. */
function guessSeq(text: string): number | undefined {
  const m = /"seq"\s*:\s*(\d{1,15})/.exec(text);
  return m === null ? undefined : Number(m[1]);
}
