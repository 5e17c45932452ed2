// The end-of-log checks of audit verification: checkpoints still waiting for records that never
// came (truncation), chains that end unanchored, and the warnings an OK result carries.
import type {
  VerifyCode,
  VerifyFailure,
  VerifyOptions,
  VerifyResult,
  VerifyWarning,
} from './verify-result.js';

export interface Location {
  readonly line?: number;
  readonly id?: string;
}

/** What the verifier knows about one writer's chain so far. */
export interface WriterState {
  seq: number;
  hash: string;
  started: boolean;
  lastCheckpointSeq: number;
  /** Set when the head was trimmed: the chain is checked from after this seq only. */
  trimmedAt?: number;
  /** Checkpoints that attest a seq this chain has not reached (yet). */
  pending: { seq: number; hash: string; loc: Location }[];
}

export interface Counts {
  readonly events: number;
  readonly checkpoints: number;
  readonly gaps: number;
  readonly dropped: number;
}

export function failure(
  code: VerifyCode,
  loc: Location,
  seq: number | undefined,
  message: string,
  writer?: string,
): VerifyFailure {
  return { ok: false, code, seq, ...(writer === undefined ? {} : { writer }), ...loc, message };
}

export function summarize(
  writers: ReadonlyMap<string, WriterState>,
  counts: Counts,
  opts: VerifyOptions,
): VerifyResult {
  const warnings: VerifyWarning[] = [];
  if (opts.hmacKey === undefined) {
    const message = 'no HMAC key: checkpoints not authenticated, a consistent rewrite would pass';
    warnings.push({ code: 'unauthenticated', message });
  }
  for (const [writer, st] of writers) {
    const cp = st.pending[0];
    if (cp !== undefined) {
      const message = `checkpoint attests seq ${cp.seq} but the chain ends at seq ${st.seq}`;
      return failure('truncated', cp.loc, st.seq + 1, message, writer);
    }
    if (st.trimmedAt !== undefined) {
      const message = `records up to seq ${st.trimmedAt} were trimmed and not verified`;
      warnings.push({ code: 'trimmed_head', writer, message });
    }
    const tail = st.seq - st.lastCheckpointSeq;
    if (tail > 0 && opts.requireSealed === true) {
      const message = `chain ends at seq ${st.seq} with no checkpoint after it`;
      return failure('truncated', {}, st.lastCheckpointSeq + 1, message, writer);
    }
    if (tail > 0) {
      const message = `${tail} record(s) after the last checkpoint (seq ${st.lastCheckpointSeq}) are not anchored`;
      warnings.push({ code: 'unanchored_tail', writer, message });
    }
  }
  if (counts.gaps > 0) {
    const message = `${counts.gaps} gap record(s): ${counts.dropped} event(s) were dropped by the writer`;
    warnings.push({ code: 'gap', message });
  }
  return { ok: true, ...counts, writers: writers.size, warnings };
}
