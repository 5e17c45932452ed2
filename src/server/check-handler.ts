// The Check handler: the edge where a decision meets the wire. It never answers with a gRPC error
// (that would hand the decision to Envoy's failure_mode_allow): overload, timeouts, decode failures
// and bugs all become deny responses. Metrics and audit are recorded here, once, after deciding.
import { IsoClock, decisionEvent } from '../audit/decision-event.js';
import type { Auditor } from '../audit/types.js';
import { deny, type Decision } from '../check/decision.js';
import type { RequestFacts } from '../check/facts.js';
import type { Pipeline } from '../check/pipeline.js';
import type { Mode } from '../proto/check-response.js';
import { DecisionEncoder } from '../proto/decision-encoder.js';
import { newDecisionId } from '../util/decision-id.js';
import { isDecodeFailure, type DecodeFailure } from '../proto/decode-check-request.js';
import type { Logger } from '../observability/logger.js';
import { hotCounter, type Metrics } from '../observability/metrics.js';
import { DecisionBudget } from './decision-budget.js';

export interface CheckHandlerOptions {
  readonly pipeline: Pipeline;
  readonly mode: Mode;
  readonly metrics: Metrics;
  readonly auditor: Auditor;
  readonly logger: Logger;
  readonly maxInFlight: number;
  /** Upper bound on one decision; well under Envoy's default 200 ms timeout. */
  readonly budgetMs: number;
}

export class CheckHandler {
  private inFlight = 0;
  private readonly budget: DecisionBudget;
  private readonly encoder = new DecisionEncoder();
  private readonly decisionCounters = new Map<string, { inc(): void }>();
  private readonly allowDuration: { observe(v: number): void };
  private readonly denyDuration: { observe(v: number): void };
  private readonly clock = new IsoClock();

  constructor(private readonly opts: CheckHandlerOptions) {
    this.budget = new DecisionBudget(opts.budgetMs);
    this.allowDuration = opts.metrics.checkDuration.labels({ decision: 'allow' });
    this.denyDuration = opts.metrics.checkDuration.labels({ decision: 'deny' });
  }

  get active(): number {
    return this.inFlight;
  }

  /**
   * Decides and answers with the encoded CheckResponse; never throws or rejects, never a gRPC
   * error. Synchronous when the pipeline is (every read a cache hit): no promise per check then.
   */
  check(request: RequestFacts | DecodeFailure): Buffer | Promise<Buffer> {
    const started = performance.now();
    const decisionId = newDecisionId();
    const facts = isDecodeFailure(request) ? undefined : request;
    if (facts === undefined)
      return this.answer(deny('malformed_request'), decisionId, facts, started);
    if (this.inFlight >= this.opts.maxInFlight)
      return this.answer(deny('overloaded'), decisionId, facts, started);
    this.inFlight++;
    let pending: Decision | Promise<Decision>;
    try {
      pending = this.opts.pipeline.decide(facts);
    } catch (err) {
      this.inFlight--;
      return this.answer(this.failed(err, decisionId), decisionId, facts, started);
    }
    if (!(pending instanceof Promise)) {
      this.inFlight--;
      return this.answer(pending, decisionId, facts, started);
    }
    return this.budget.race(pending, started).then(
      (decision) => {
        this.inFlight--;
        return this.answer(decision, decisionId, facts, started);
      },
      (err: unknown) => {
        this.inFlight--;
        return this.answer(this.failed(err, decisionId), decisionId, facts, started);
      },
    );
  }

  private failed(err: unknown, decisionId: string): Decision {
    this.opts.logger.error(
      { err: err instanceof Error ? err.message : String(err), decision_id: decisionId },
      'check failed',
    );
    return deny('internal_error');
  }

  /** Encodes the answer, then records metrics and audit; neither failing can lose the answer. */
  private answer(
    decided: Decision,
    decisionId: string,
    facts: RequestFacts | undefined,
    started: number,
  ): Buffer {
    let decision = decided;
    let response: Buffer;
    try {
      response = this.encoder.encode(decision, { decisionId, mode: this.opts.mode, facts });
    } catch {
      decision = deny('internal_error');
      response = this.encoder.encode(decision, { decisionId, mode: 'enforce', facts: undefined });
    }
    try {
      this.record(decision, decisionId, facts, started);
    } catch (err) {
      // Metrics or audit failing must not turn an answer into a hung call (Envoy would time out
      // and fall back to failure_mode_allow); the audit trail counts its own drops.
      this.opts.logger.error(
        { err: err instanceof Error ? err.message : String(err) },
        'recording failed',
      );
    }
    return response;
  }

  private record(
    decision: Decision,
    decisionId: string,
    facts: RequestFacts | undefined,
    started: number,
  ): void {
    const seconds = (performance.now() - started) / 1000;
    const verdict = decision.allowed ? 'allow' : 'deny';
    const reason = decision.allowed ? 'allowed' : decision.reason;
    const who = decision.allowed ? decision.identity : decision.partial;
    const method = who?.method ?? 'none';
    // One plain-number counter per label set (hotCounter), found by a short key.
    const key = `${verdict}|${reason}|${method}`;
    let counter = this.decisionCounters.get(key);
    if (counter === undefined) {
      counter = hotCounter(this.opts.metrics.decisions, {
        decision: verdict,
        reason,
        identity_method: method,
        mode: this.opts.mode,
      });
      this.decisionCounters.set(key, counter);
    }
    counter.inc();
    (decision.allowed ? this.allowDuration : this.denyDuration).observe(seconds);
    this.opts.auditor.record(
      decisionEvent(decision, decisionId, facts, this.opts.mode, seconds, this.clock.iso()),
    );
  }
}
