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
