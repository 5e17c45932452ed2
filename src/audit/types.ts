// The audit event a decision or an admin change produces; never carries a secret or token.

export interface DecisionAuditInput {
  readonly type: 'decision';
  readonly time: string;
  readonly decision_id: string;
  readonly trace_id?: string | undefined;
  readonly decision: 'allow' | 'deny';
  /** In dry-run mode: the decision enforce mode would have made (the answer was allow). */
  readonly mode: 'enforce' | 'dry-run';
  readonly reason: string;
  readonly identity_method?: string | undefined;
  readonly agent_id?: string | undefined;
  readonly tenant?: string | undefined;
  readonly role?: string | undefined;
  /** key id or certificate fingerprint or OIDC subject: a reference, never the credential. */
  readonly credential_ref?: string | undefined;
  readonly source_principal?: string | undefined;
  readonly destination?: string | undefined;
  readonly method?: string | undefined;
  readonly path?: string | undefined;
  readonly latency_us: number;
  /** Slots for the chain's fields, overwritten when the event is sealed (sealInPlace, chain.ts). */
  prev_hash?: string;
  seq?: number;
  writer?: string;
}

export interface AdminAuditInput {
  readonly type: 'admin';
  readonly time: string;
  readonly decision_id: string;
  readonly actor: string;
  readonly action: string;
  readonly object_kind: 'agent' | 'key' | 'tenant' | 'registry';
  readonly object_id: string;
  readonly result: 'ok' | 'error';
  readonly detail?: string | undefined;
}

export type AuditInput = DecisionAuditInput | AdminAuditInput;

/** What the server needs from the audit trail: a non-blocking record() and a flushing close(). */
export interface Auditor {
  record(event: AuditInput): void;
  close(): Promise<void>;
}

/**
 * Written in place of events that were dropped (queue overflow or sink failure) before they were
 * given a sequence number, so the chain stays verifiable and an auditor still sees the loss.
 */
export interface GapAuditInput {
  readonly type: 'gap';
  readonly time: string;
  readonly dropped_overflow: number;
  readonly dropped_sink_error: number;
}

/** The fields that link a stored event into its writer's hash chain. */
export interface ChainFields {
  readonly writer: string;
  readonly seq: number;
  readonly prev_hash: string;
  /** hex SHA-256 of the RFC 8785 canonical JSON of the record without `hash`. */
  readonly hash: string;
}

export type ChainedRecord = (AuditInput | GapAuditInput) & ChainFields;

/** Outside the chain: attests that `writer`'s chain reached `seq` with `head_hash`. */
export interface CheckpointRecord {
  readonly type: 'checkpoint';
  readonly writer: string;
  readonly seq: number;
  readonly head_hash: string;
  readonly time: string;
  /** hex HMAC-SHA256 of the canonical checkpoint without `hmac`; absent when no key is set. */
  readonly hmac?: string;
}

export type StoredRecord = ChainedRecord | CheckpointRecord;

/** Where a writer's chain ends: the last sequence number and its hash. */
export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
}
