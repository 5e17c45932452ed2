// The doorkeeper that gates per-key caches: a key counts as "seen before" on its second sighting,
// is forgotten once that is reported, and a key whose slot another key took counts as new again.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Doorkeeper, hash32 } from '../../src/util/doorkeeper.js';

describe('Doorkeeper', () => {
  it('reports a key as seen on its second sighting, then forgets it', () => {
    const d = new Doorkeeper(64);
    expect(d.seenBefore('spiffe://example.org/a')).toBe(false);
    expect(d.seenBefore('spiffe://example.org/a')).toBe(true);
    expect(d.seenBefore('spiffe://example.org/a')).toBe(false);
  });

  it('never reports a key it was not shown (distinct hashes)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.string(), { minLength: 2, maxLength: 50 }), (keys) => {
        const d = new Doorkeeper(1024);
        const [first, ...rest] = keys;
        d.seenBefore(first!);
        for (const k of rest) if (hash32(k) !== hash32(first!)) expect(d.seenBefore(k)).toBe(false);
      }),
    );
  });

  it('forgets keys once many others have taken the slots (bounded memory)', () => {
    const d = new Doorkeeper(16);
    d.seenBefore('key-0');
    for (let i = 1; i < 2000; i++) d.seenBefore(`key-${i}`);
    let remembered = 0;
    for (let i = 0; i < 1000; i++) if (d.seenBefore(`key-${i}`)) remembered++;
    expect(remembered).toBeLessThanOrEqual(16);
  });

  it('hash32 is FNV-1a (published test vectors)', () => {
    expect(hash32('')).toBe(0x811c9dc5);
    expect(hash32('a')).toBe(0xe40c292c);
    expect(hash32('foobar')).toBe(0xbf9cf968);
  });
});
