// The Check handler: the edge where a decision meets the wire. It never answers with a gRPC error
// (that would hand the decision to Envoy's failure_mode_allow): overload, timeouts, decode failures
// and bugs all become deny responses. Metrics and audit are recorded here, once, after deciding.
import type { Auditor } from '../audit/types.js';
import { deny, type Decision } from '../check/decision.js';
import type { RequestFacts } from '../check/facts.js';
import type { Pipeline } from '../check/pipeline.js';
import type { Mode } from '../check/response.js';
import { DecisionEncoder } from '../proto/decision-encoder.js';
import { newDecisionId } from '../util/decision-id.js';
import { isDecodeFailure, type DecodeFailure } from '../proto/decode-check-request.js';
import type { Logger } from '../observability/logger.js';
import { hotCounter, type Metrics } from '../observability/metrics.js';

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

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

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
    const traceparent = facts?.headers.get('traceparent');
    const trace = traceparent === undefined ? null : TRACEPARENT.exec(traceparent);
    // Keys in sorted order, with slots for the chain's fields: the audit trail then seals the
    // object in place, its JSON being the canonical form (chain.ts, sealInPlace).
    this.opts.auditor.record({
      agent_id: who?.agentId,
      credential_ref: who?.credentialRef,
      decision: verdict,
      decision_id: decisionId,
      destination: facts?.contextExtensions.get('service') ?? facts?.host,
      identity_method: who?.method,
      latency_us: Math.round(seconds * 1e6),
      method: facts?.method,
      mode: this.opts.mode,
      // The query string can carry tokens (?access_token=…): only the path part is audited.
      path: facts === undefined ? undefined : stripQuery(facts.path),
      prev_hash: '',
      reason,
      role: who?.role,
      seq: 0,
      source_principal: facts?.sourcePrincipal === '' ? undefined : facts?.sourcePrincipal,
      tenant: who?.tenant,
      time: this.clock.iso(),
      trace_id: trace?.[1],
      type: 'decision',
      writer: '',
    });
  }
}

function stripQuery(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}

/** ISO-8601 time of now, formatted once per millisecond rather than once per decision. */
class IsoClock {
  private ms = 0;
  private text = '';

  iso(): string {
    const now = Date.now();
    if (now !== this.ms) {
      this.ms = now;
      this.text = new Date(now).toISOString();
    }
    return this.text;
  }
}

function expireUnanswered(due: readonly Waiter[]): void {
  for (const w of due) {
    if (w.settled) continue;
    w.settled = true;
    w.expire();
  }
}

interface Waiter {
  readonly deadline: number;
  /** Answered (or expired): the sweep drops it without calling expire(). */
  settled: boolean;
  expire(): void;
}

/**
 * The decision budget with one coarse timer for every check in flight, instead of a setTimeout,
 * a clearTimeout and a Promise.race per request (they showed in cache-hit profiles). A check that
 * overruns gets decision_timeout between budgetMs and budgetMs + one tick (then one socket poll,
 * see sweep); the tick is a tenth of the budget (at most 15 ms), so with the 150 ms budget the
 * deny still beats Envoy's 200 ms default.
 * Waiters sit in an array in deadline order (every waiter gets the same budget); answered ones are
 * only marked, so a check allocates no hash-table churn (a Set's delete showed in heap profiles).
 */
export class DecisionBudget {
  private waiting: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly tickMs: number;

  constructor(private readonly budgetMs: number) {
    this.tickMs = Math.max(1, Math.min(15, Math.floor(budgetMs / 10)));
  }

  race(decision: Promise<Decision>, startedMs: number): Promise<Decision> {
    return new Promise<Decision>((resolve, reject) => {
      const w: Waiter = {
        deadline: startedMs + this.budgetMs,
        settled: false,
        expire: () => resolve(deny('decision_timeout')),
      };
      this.waiting.push(w);
      if (this.timer === undefined) {
        this.timer = setInterval(() => this.sweep(), this.tickMs);
        this.timer.unref();
      }
      decision.then(
        (d) => {
          w.settled = true;
          resolve(d);
        },
        (err: unknown) => {
          w.settled = true;
          reject(err);
        },
      );
    });
  }

  /** Waiters still held (answered ones before the first pending one are let go each tick). */
  get held(): number {
    return this.waiting.length;
  }

  private sweep(): void {
    const now = performance.now();
    const q = this.waiting;
    let due: Waiter[] | undefined;
    let i = 0;
    for (; i < q.length; i++) {
      const w = q[i]!;
      if (w.settled) continue;
      if (w.deadline > now) break;
      (due ??= []).push(w);
    }
    // Due checks are timed out after the next socket poll, not now: timers run before Node reads
    // its sockets, so after a stall of this process the answer a check waited for (a Redis reply,
    // a JWKS response) may already be there, unread. Denying it anyway would turn our own pause
    // into decision_timeouts for checks whose answers had arrived in time.
    if (due !== undefined) setImmediate(expireUnanswered, due);
    // Settled waiters behind the first pending one stay until it is answered or expires. Those
    // before it are let go on every tick: a waiter holds its check's promise and decision, and
    // keeping answered ones until a thousand had piled up (half a second at 2 000 checks/s) made
    // them outlive young-generation collections — most of what a cache miss got promoted.
    if (i === q.length) {
      this.waiting = [];
      clearInterval(this.timer);
      this.timer = undefined;
    } else if (i > 0) {
      this.waiting = q.slice(i);
    }
  }
}
