// What an allow strips, checked against the rule as README/SPEC state it (written out plainly here
// as a reference): credentials always; every inbound x-agent-* header and underscore spelling that
// agent-authz does not set itself; never a header it sets; in a stable order.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { STRIP_ALWAYS } from '../../../src/check/header-rules.js';
import {
  allowSetNames,
  extraRemovals,
  headersToRemove,
} from '../../../src/proto/check-response.js';
import { makeFacts } from '../../helpers/facts.js';

function reference(names: readonly string[], setNames: readonly string[]): string[] {
  const remove = new Set<string>(STRIP_ALWAYS);
  for (const name of names) {
    const dashed = name.replaceAll('_', '-');
    if (dashed.startsWith('x-agent-') && !setNames.includes(name)) remove.add(name);
    if (dashed !== name && STRIP_ALWAYS.includes(dashed)) remove.add(name);
  }
  for (const n of setNames) remove.delete(n);
  return [...remove];
}

const name = fc.oneof(
  fc.constantFrom(
    'x-agent-id',
    'x-agent-role',
    'x-agent-token',
    'x-agent-debug',
    'x_agent_id',
    'x_api_key',
    'x-api-key',
    'client_cert',
    'client-cert-chain',
    'x-agent-authz-decision-id',
    'user-agent',
    'x-agentless',
  ),
  fc.stringMatching(/^[a-z_-]{1,12}$/),
);

describe('headersToRemove', () => {
  it('property: matches the stated rule for any set of inbound header names', () => {
    fc.assert(
      fc.property(fc.uniqueArray(name, { maxLength: 12 }), fc.boolean(), (names, withId) => {
        const facts = makeFacts({ headers: Object.fromEntries(names.map((n) => [n, 'v'])) });
        const setNames = allowSetNames(withId);
        expect(headersToRemove(facts, setNames)).toEqual(reference(names, setNames));
      }),
    );
  });

  it('has no extra removals (and allocates none) for a request without stray headers', () => {
    const facts = makeFacts({
      headers: { 'x-agent-id': 'a', 'x-api-key': 'k', authorization: 'b' },
    });
    expect(extraRemovals(facts, allowSetNames(true))).toBeUndefined();
    expect(extraRemovals(makeFacts({ headers: { x_agent_id: 'a' } }), allowSetNames(true))).toEqual(
      ['x_agent_id'],
    );
  });
});
