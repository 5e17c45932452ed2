// Templated responses must be byte-identical to encoding the full response every time.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deny, type Decision } from '../../../src/check/decision.js';
import type { RequestFacts } from '../../../src/check/facts.js';
import { buildResponse, type Mode } from '../../../src/proto/check-response.js';
import { DecisionEncoder } from '../../../src/proto/decision-encoder.js';
import { encodeCheckResponse } from '../../../src/proto/encode-check-response.js';
import { makeFacts } from '../../helpers/facts.js';

const facts = (headers: Record<string, string>): RequestFacts =>
  makeFacts({ headers, sourcePrincipal: 'spiffe://example.org/a/b' });

const allow: Decision = {
  allowed: true,
  identity: { agentId: 'alpha', tenant: 'acme', role: 'r', method: 'spiffe', credentialRef: 'x' },
};

describe('DecisionEncoder', () => {
  const cases: [string, Decision, Mode, RequestFacts][] = [
    ['allow', allow, 'enforce', facts({})],
    [
      'allow with stray headers',
      allow,
      'enforce',
      facts({ 'x-agent-foo': '1', x_agent_id: 'root' }),
    ],
    [
      'deny',
      deny('agent_not_approved', { agentId: 'gamma', tenant: 'acme', method: 'spiffe' }),
      'enforce',
      facts({}),
    ],
    ['deny 503', deny('registry_unavailable'), 'enforce', facts({})],
    ['dry-run deny', deny('untrusted_trust_domain'), 'dry-run', facts({ 'x-agent-x': 'y' })],
    [
      'placeholder-like header name',
      allow,
      'enforce',
      facts({ [`x-agent-${'~'.repeat(36)}`]: 'v' }),
    ],
    [
      'non-ASCII identity',
      { ...allow, identity: { ...allow.identity, role: 'rôle' } } as Decision,
      'enforce',
      facts({}),
    ],
  ];

  it.each(cases)(
    '%s: cached bytes equal a full encode, for several decision ids',
    (_n, decision, mode, f) => {
      const enc = new DecisionEncoder();
      for (let i = 0; i < 3; i++) {
        const decisionId = randomUUID();
        const direct = encodeCheckResponse(buildResponse(decision, { decisionId, mode, facts: f }));
        expect(enc.encode(decision, { decisionId, mode, facts: f }).equals(direct)).toBe(true);
      }
    },
  );

  it('keeps templates apart per identity and per stripped-header set', () => {
    const enc = new DecisionEncoder();
    const id = randomUUID();
    const a = enc.encode(allow, { decisionId: id, mode: 'enforce', facts: facts({}) });
    const other: Decision = { ...allow, identity: { ...allow.identity, agentId: 'beta' } };
    const b = enc.encode(other, { decisionId: id, mode: 'enforce', facts: facts({}) });
    const c = enc.encode(allow, {
      decisionId: id,
      mode: 'enforce',
      facts: facts({ 'x-agent-z': '1' }),
    });
    expect(a.equals(b)).toBe(false);
    expect(a.equals(c)).toBe(false);
    expect(b.includes(Buffer.from('beta'))).toBe(true);
    expect(c.includes(Buffer.from('x-agent-z'))).toBe(true);
  });

  it('templates only identities that come back; one-off identities leave nothing behind', () => {
    const enc = new DecisionEncoder();
    const once = (agentId: string) =>
      enc.encode(
        { ...allow, identity: { ...allow.identity, agentId } },
        { decisionId: randomUUID(), mode: 'enforce', facts: facts({}) },
      );
    for (let i = 0; i < 2000; i++) once(`one-off-${i}`);
    expect(enc.templated).toBeLessThanOrEqual(1); // a hash collision may template one
    const before = enc.templated;
    for (let i = 0; i < 3; i++) once('regular');
    expect(enc.templated).toBe(before + 1);
  });
});
