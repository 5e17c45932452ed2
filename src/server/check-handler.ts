// The Check handler: the edge where a decision meets the wire. It never answers with a gRPC error
// (that would hand the decision to Envoy's failure_mode_allow): overload, timeouts, decode failures
// and bugs all become deny responses. Metrics and audit are recorded here, once, after deciding.
import { randomUUID } from 'node:crypto';
import type { Auditor } from '../audit/types.js';
import { deny, type Decision } from '../check/decision.js';
import type { RequestFacts } from '../check/facts.js';
import type { Pipeline } from '../check/pipeline.js';
import { buildResponse, type CheckResponseObject, type Mode } from '../check/response.js';
import { isDecodeFailure, type DecodeFailure } from '../proto/decode-check-request.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

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

  constructor(private readonly opts: CheckHandlerOptions) {}

  get active(): number {
    return this.inFlight;
  }

  async check(request: RequestFacts | DecodeFailure): Promise<CheckResponseObject> {
    const started = process.hrtime.bigint();
    const decisionId = randomUUID();
    const facts = isDecodeFailure(request) ? undefined : request;
    let decision: Decision;
    if (facts === undefined) decision = deny('malformed_request');
    else if (this.inFlight >= this.opts.maxInFlight) decision = deny('overloaded');
    else {
      this.inFlight++;
      try {
        decision = await this.decideWithin(facts);
      } catch (err) {
        this.opts.logger.error(
          { err: err instanceof Error ? err.message : String(err), decision_id: decisionId },
          'check failed',
        );
        decision = deny('internal_error');
      } finally {
        this.inFlight--;
      }
    }
    let response: CheckResponseObject;
    try {
      response = buildResponse(decision, { decisionId, mode: this.opts.mode, facts });
    } catch {
      decision = deny('internal_error');
      response = buildResponse(decision, { decisionId, mode: 'enforce', facts: undefined });
    }
    this.record(decision, decisionId, facts, started);
    return response;
  }

  private decideWithin(facts: RequestFacts): Promise<Decision> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<Decision>((resolve) => {
      timer = setTimeout(() => resolve(deny('decision_timeout')), this.opts.budgetMs);
    });
    return Promise.race([this.opts.pipeline.decide(facts), timeout]).finally(() =>
      clearTimeout(timer),
    );
  }

  private record(
    decision: Decision,
    decisionId: string,
    facts: RequestFacts | undefined,
    started: bigint,
  ): void {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const verdict = decision.allowed ? 'allow' : 'deny';
    const reason = decision.allowed ? 'allowed' : decision.reason;
    const who = decision.allowed ? decision.identity : decision.partial;
    const m = this.opts.metrics;
    m.decisions.inc({
      decision: verdict,
      reason,
      identity_method: who?.method ?? 'none',
      mode: this.opts.mode,
    });
    m.checkDuration.observe({ decision: verdict }, seconds);
    const traceparent = facts?.headers.get('traceparent');
    const trace = traceparent === undefined ? null : TRACEPARENT.exec(traceparent);
    this.opts.auditor.record({
      type: 'decision',
      time: new Date().toISOString(),
      decision_id: decisionId,
      trace_id: trace?.[1],
      decision: verdict,
      mode: this.opts.mode,
      reason,
      identity_method: who?.method,
      agent_id: who?.agentId,
      tenant: who?.tenant,
      role: who?.role,
      credential_ref: who?.credentialRef,
      source_principal: facts?.sourcePrincipal === '' ? undefined : facts?.sourcePrincipal,
      destination: facts?.contextExtensions.get('service') ?? facts?.host,
      method: facts?.method,
      path: facts?.path,
      latency_us: Math.round(seconds * 1e6),
    });
  }
}
