import { describe, expect, it } from 'vitest';
import { newDecisionId } from '../../src/util/decision-id.js';

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('newDecisionId', () => {
  it('gives version-4 UUIDs, all different, across several refills of its random pool', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const id = newDecisionId();
      expect(id).toMatch(V4);
      seen.add(id);
    }
    expect(seen.size).toBe(5000);
  });

  it('uses every hex digit in the random positions (not a constant or a counter)', () => {
    const digits = new Map<number, Set<string>>();
    for (let i = 0; i < 2000; i++) {
      const id = newDecisionId();
      for (const p of [0, 9, 15, 19, 20, 35]) {
        const s = digits.get(p) ?? new Set<string>();
        s.add(id[p]!);
        digits.set(p, s);
      }
    }
    for (const [p, s] of digits) expect(s.size, `position ${p}`).toBe(p === 19 ? 4 : 16);
  });
});
