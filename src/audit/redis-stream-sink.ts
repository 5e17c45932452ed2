// The shared-deployment audit sink: one Redis Stream per writer. A batch is one XADD whose entry
// holds the batch's records as JSON lines (one command, applied all-or-nothing), so a chain on the
// stream never ends half-way through a batch. Entries with a single `record` field still verify.
import type { Cluster, Redis } from 'ioredis';
import type { Metrics } from '../observability/metrics.js';
import { GENESIS, headOfRecord, parseRecord, storedLinesBuffer } from './chain.js';
import type { AuditSink } from './sink.js';
import type { ChainHead, StoredRecord } from './types.js';

export type RedisClient = Redis | Cluster;

/** The entry field that carries the record; the verifier reads only this. */
export const RECORD_FIELD = 'record';
/**
 * A batch of records in one entry, newline-separated, in chain order: one XADD per flush instead
 * of one per event (the per-command cost was a sixth of a Check). An entry removed with XDEL takes
 * its whole batch with it, which verification reports as a sequence gap like any deletion.
 */
export const RECORDS_FIELD = 'records';
const PAGE = 200;

/**
 * `<prefix>:audit:{<writer>}`: the hash tag keeps a writer's whole stream in one Cluster slot,
 * while different writers spread over the cluster.
 */
export function auditStreamKey(writer: string, prefix = 'agent-authz'): string {
  return `${prefix}:audit:{${writer}}`;
}

export interface RedisStreamSinkOptions {
  readonly client: RedisClient;
  readonly key: string;
  readonly writer: string;
  /**
   * Optional `MAXLEN ~ n` trimming. Trimming drops the start of the chain, so a verifier can then
   * only check from the oldest retained entry on (verifyStream's allowTrimmedHead).
   */
  readonly maxLen?: number | undefined;
  /** Closed with the sink when the sink created it; a shared client is left open. */
  readonly ownsClient?: boolean;
}

export class RedisStreamSink implements AuditSink {
  readonly kind = 'redis';

  constructor(
    private readonly opts: RedisStreamSinkOptions,
    private readonly metrics?: Metrics,
  ) {}

  async readHead(): Promise<ChainHead> {
    const { client, key, writer } = this.opts;
    try {
      // Usually the newest entry is ours; on a stream shared by several writers, page back.
      let end = '+';
      for (;;) {
        const page = await client.xrevrange(key, end, '-', 'COUNT', PAGE);
        for (const [, fields] of page) {
          const lines = entryRecords(fields);
          for (let i = lines.length - 1; i >= 0; i--) {
            const head = headOfRecord(parseRecord(lines[i]!), writer);
            if (head !== undefined) return head;
          }
        }
        if (page.length < PAGE) return GENESIS;
        end = `(${page[page.length - 1]![0]}`;
      }
    } catch (err) {
      this.metrics?.redisErrors.inc({ operation: 'audit' });
      throw err;
    }
  }

  async write(records: readonly StoredRecord[]): Promise<void> {
    const { client, key, maxLen } = this.opts;
    const trim = maxLen === undefined ? [] : ['MAXLEN', '~', String(maxLen)];
    if (records.length === 0) return;
    // The batch as one Buffer, written by ioredis as it is. As a string (~45 KB at 64 records)
    // it was concatenated and flattened twice on its way out: at 5 000 checks/s a fresh process
    // promoted ~3.5 MB/s of those copies for its first ~12 s (old generation +49–57 MB in 20 s,
    // 17–22 MB with the Buffer; README, Performance), garbage only a full collection gives back.
    const batch = storedLinesBuffer(records, 'between');
    try {
      await client.xadd(key, ...trim, '*', RECORDS_FIELD, batch);
    } catch (err) {
      this.metrics?.redisErrors.inc({ operation: 'audit' });
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.opts.ownsClient === true) await this.opts.client.quit().catch(() => undefined);
  }
}

/** The record JSON from an entry's flat [field, value, …] list (one record per entry). */
export function recordField(fields: readonly string[]): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === RECORD_FIELD) return fields[i + 1];
  }
  return undefined;
}

/** Every record JSON in an entry: a `records` batch, or a single `record`. */
export function entryRecords(fields: readonly string[]): string[] {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === RECORDS_FIELD) return fields[i + 1]!.split('\n');
  }
  return [recordField(fields) ?? ''];
}
