// What an audit verification returns: a summary when every chain checks out, or the first
// problem with a stable code (the CLI prints it, tests assert on it, runbooks key on it).

export type VerifyCode =
  /** A line or entry is not an audit record (not JSON, or required fields missing). */
  | 'malformed'
  /** A record's content does not match its own hash: a field was modified. */
  | 'hash_mismatch'
  /** A sequence number is missing and does not appear later: a record was deleted. */
  | 'seq_gap'
  /** A record appears before a lower seq, or is repeated: records were moved or replayed. */
  | 'out_of_order'
  /** Seq follows on, but prev_hash does not link to the previous record: a record was replaced. */
  | 'prev_hash_mismatch'
  /** A checkpoint's HMAC is missing or wrong: it was forged or edited without the key. */
  | 'checkpoint_invalid'
  /** An authentic-looking checkpoint names a hash the chain does not have: the chain was rewritten. */
  | 'checkpoint_mismatch'
  /** A checkpoint attests records that are not there (tail removed), or requireSealed failed. */
  | 'truncated';

export interface VerifyWarning {
  readonly code: 'unauthenticated' | 'unanchored_tail' | 'gap' | 'trimmed_head';
  readonly writer?: string;
  readonly message: string;
}

export interface VerifyOk {
  readonly ok: true;
  /** Decision and admin events (gap records not included). */
  readonly events: number;
  readonly writers: number;
  readonly checkpoints: number;
  readonly gaps: number;
  /** Events the writers reported dropped, summed over the gap records. */
  readonly dropped: number;
  readonly warnings: readonly VerifyWarning[];
}

export interface VerifyFailure {
  readonly ok: false;
  readonly code: VerifyCode;
  /** The chain position where the problem is (for seq_gap, the first missing seq). */
  readonly seq: number | undefined;
  readonly writer?: string;
  /** 1-based line number (file) … */
  readonly line?: number;
  /** … or stream entry id (Redis) where the problem was found. */
  readonly id?: string;
  readonly message: string;
}

export type VerifyResult = VerifyOk | VerifyFailure;

export interface VerifyOptions {
  /** The key the writers sign checkpoints with; without it checkpoints are not authenticated. */
  readonly hmacKey?: string | undefined;
  /** Accept chains that start after seq 1 (a stream trimmed with MAXLEN); warns trimmed_head. */
  readonly allowTrimmedHead?: boolean | undefined;
  /** Every chain must end with a checkpoint (logs of writers that were shut down cleanly). */
  readonly requireSealed?: boolean | undefined;
}
