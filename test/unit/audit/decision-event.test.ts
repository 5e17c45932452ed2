// The audit event of a decision: what it records of the request (never a query string), and that
// it comes in the layout the chain seals in place (sorted keys, chain slots).
import { describe, expect, it } from 'vitest';
import { sealRecord } from '../../../src/audit/chain.js';
import { IsoClock, decisionEvent } from '../../../src/audit/decision-event.js';
import { deny, type Decision } from '../../../src/check/decision.js';
import { makeFacts } from '../../helpers/facts.js';

const ID = '0f8fad5b-d9cb-469f-a165-70867728950e';
const TIME = '2026-01-02T03:04:05.678Z';
const allow: Decision = {
  allowed: true,
  identity: {
    agentId: 'alpha',
    tenant: 'acme',
    role: 'reader',
    method: 'spiffe',
    credentialRef: 'spiffe://example.org/a',
  },
};
const facts = makeFacts({
  sourcePrincipal: 'spiffe://example.org/a',
  method: 'POST',
  path: '/orders?access_token=secret',
  host: 'orders.svc',
  headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
  contextExtensions: new Map([['service', 'orders']]),
});

describe('decisionEvent', () => {
  it('records an allow with its identity, and the path without its query string', () => {
    expect(decisionEvent(allow, ID, facts, 'enforce', 0.0012346, TIME)).toEqual({
      agent_id: 'alpha',
      credential_ref: 'spiffe://example.org/a',
      decision: 'allow',
      decision_id: ID,
      destination: 'orders',
      identity_method: 'spiffe',
      latency_us: 1235,
      method: 'POST',
      mode: 'enforce',
      path: '/orders',
      prev_hash: '',
      reason: 'allowed',
      role: 'reader',
      seq: 0,
      source_principal: 'spiffe://example.org/a',
      tenant: 'acme',
      time: TIME,
      trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
      type: 'decision',
      writer: '',
    });
  });

  it('records what a deny learned, the host without a service, and no malformed trace id', () => {
    const bare = makeFacts({ host: 'h.svc', headers: { traceparent: 'not-a-traceparent' } });
    const event = decisionEvent(
      deny('agent_not_approved', { agentId: 'gamma', tenant: 'acme' }),
      ID,
      bare,
      'dry-run',
      0,
      TIME,
    );
    expect(event).toMatchObject({
      agent_id: 'gamma',
      tenant: 'acme',
      decision: 'deny',
      reason: 'agent_not_approved',
      mode: 'dry-run',
      destination: 'h.svc',
      source_principal: undefined,
      trace_id: undefined,
    });
  });

  it('records an undecodable request with no request fields', () => {
    const event = decisionEvent(deny('malformed_request'), ID, undefined, 'enforce', 0, TIME);
    for (const k of ['destination', 'method', 'path', 'source_principal', 'trace_id'] as const)
      expect(event[k], k).toBeUndefined();
  });

  it('comes with sorted keys and chain slots, so the trail seals the object itself', () => {
    const event = decisionEvent(allow, ID, facts, 'enforce', 0.001, TIME);
    const keys = Object.keys(event);
    expect(keys).toEqual([...keys].sort());
    expect(keys).toEqual(expect.arrayContaining(['prev_hash', 'seq', 'writer']));
    const sealed = sealRecord(event, 'w-1', { seq: 4, hash: 'c'.repeat(64) });
    expect(sealed).toBe(event);
    expect(sealed).toMatchObject({ seq: 5, prev_hash: 'c'.repeat(64), writer: 'w-1' });
  });
});

describe('IsoClock', () => {
  it('formats the current time as ISO-8601', () => {
    const before = Date.now();
    const t = Date.parse(new IsoClock().iso());
    expect(t).toBeGreaterThanOrEqual(before);
    expect(t).toBeLessThanOrEqual(Date.now());
  });
});
