// Rate-limited warnings for audit loss: the first problem is logged at once, later ones are
// summed and logged at most once per interval, so an outage cannot flood the logs. The metric
// agent_authz_audit_events_total carries the exact counts; the log says that and why.
import type { Logger } from '../observability/logger.js';

export class DropLog {
  private overflow = 0;
  private sinkErrorDrops = 0;
  private writeFailures = 0;
  private lastError: { code?: string; message: string } | undefined;
  private lastLogAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = 10_000,
  ) {}

  add(kind: 'overflow' | 'sink_error', n: number): void {
    if (n <= 0) return;
    if (kind === 'overflow') this.overflow += n;
    else this.sinkErrorDrops += n;
    this.maybeLog();
  }

  /** A failed sink call (it may be retried; drops are reported through add()). */
  sinkError(err: unknown): void {
    this.writeFailures++;
    const e = err as { code?: unknown; message?: unknown };
    this.lastError = {
      ...(typeof e?.code === 'string' ? { code: e.code } : {}),
      message: typeof e?.message === 'string' ? e.message : String(err),
    };
    this.maybeLog();
  }

  /** Logs whatever is still unreported (at close). */
  flush(): void {
    if (this.overflow + this.sinkErrorDrops + this.writeFailures > 0) this.log();
  }

  private maybeLog(): void {
    if (performance.now() - this.lastLogAt >= this.intervalMs) this.log();
  }

  private log(): void {
    this.lastLogAt = performance.now();
    this.logger.warn(
      {
        code: 'audit_loss',
        dropped_overflow: this.overflow,
        dropped_sink_error: this.sinkErrorDrops,
        sink_failures: this.writeFailures,
        ...(this.lastError === undefined ? {} : { last_error: this.lastError }),
      },
      'audit events dropped or delayed since the last report',
    );
    this.overflow = 0;
    this.sinkErrorDrops = 0;
    this.writeFailures = 0;
    this.lastError = undefined;
  }
}
