// The audit event of one Check decision, built in the layout the audit chain seals in place (see
// sealInPlace in chain.ts): what a decision tells the audit trail, and what it must never tell it.
import type { Decision } from '../check/decision.js';
import type { RequestFacts } from '../check/facts.js';
import type { DecisionAuditInput } from './types.js';

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/**
 * The event for `decision`: who was decided about (the identity, or whatever was learned before a
 * deny), about what request, and how long it took. `facts` is undefined when the request did not
 * decode. Its keys follow sealInPlace's layout (chain.ts), so the trail seals this very object.
 */
export function decisionEvent(
  decision: Decision,
  decisionId: string,
  facts: RequestFacts | undefined,
  mode: DecisionAuditInput['mode'],
  latencySeconds: number,
  time: string,
): DecisionAuditInput {
  const who = decision.allowed ? decision.identity : decision.partial;
  const traceparent = facts?.headers.get('traceparent');
  const trace = traceparent === undefined ? null : TRACEPARENT.exec(traceparent);
  return {
    agent_id: who?.agentId,
    credential_ref: who?.credentialRef,
    decision: decision.allowed ? 'allow' : 'deny',
    decision_id: decisionId,
    destination: facts?.contextExtensions.get('service') ?? facts?.host,
    identity_method: who?.method,
    latency_us: Math.round(latencySeconds * 1e6),
    method: facts?.method,
    mode,
    // The query string can carry tokens (?access_token=…): only the path part is audited.
    path: facts === undefined ? undefined : stripQuery(facts.path),
    prev_hash: '',
    reason: decision.allowed ? 'allowed' : decision.reason,
    role: who?.role,
    seq: 0,
    source_principal: facts?.sourcePrincipal === '' ? undefined : facts?.sourcePrincipal,
    tenant: who?.tenant,
    time,
    trace_id: trace?.[1],
    type: 'decision',
    writer: '',
  };
}

function stripQuery(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}

/**
 * ISO-8601 time of now for audit events, formatted once per millisecond rather than once per
 * decision.
 */
export class IsoClock {
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
