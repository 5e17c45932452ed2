// The storage behind the audit trail: something that can append records in order and tell a
// restarting writer where its chain ended. The file and Redis Stream sinks implement it.
import type { ChainHead, StoredRecord } from './types.js';

export interface AuditSink {
  /** Short name for logs: 'file', 'redis' or a test double's name. */
  readonly kind: string;
  /**
   * Where this writer's chain ends on the sink (GENESIS when it has no record there yet).
   * Must reject, never guess, when the sink cannot be read: assuming GENESIS by mistake would
   * start a second chain under the same writer id.
   */
  readHead(): Promise<ChainHead>;
  /**
   * Appends the records in this order. A rejection means some, all or none may be stored; the
   * trail re-reads the head to find out before it writes again.
   */
  write(records: readonly StoredRecord[]): Promise<void>;
  close(): Promise<void>;
}
