// Chain building and tamper detection on the JSON-lines file sink: each kind of tampering must
// be reported with its own code and at the right seq.
import { beforeEach, describe, expect, it } from 'vitest';
import { GENESIS_HASH, recordHash } from '../../src/audit/chain.js';
import { verifyFile } from '../../src/audit/verify.js';
import {
  HMAC_KEY,
  fileTrail,
  lineOfSeq,
  readLines,
  tempFile,
  writeEvents,
  writeLines,
} from './helpers.js';

type Rec = Record<string, unknown> & { type: string; seq: number; hash: string };

/** Edits event `seq` and re-hashes the chain from there on, as a forger without the key would. */
function rewriteFrom(lines: string[], seq: number, edit: (r: Rec) => void): string[] {
  const recs = lines.map((l) => JSON.parse(l) as Rec);
  const hashAt = new Map<number, string>();
  let prev = '';
  for (const r of recs) {
    if (r.type === 'checkpoint') continue;
    if (r.seq === seq) edit(r);
    if (r.seq >= seq) {
      r.prev_hash = prev;
      r.hash = recordHash(r);
    }
    prev = r.hash;
    hashAt.set(r.seq, r.hash);
  }
  for (const r of recs) if (r.type === 'checkpoint') r.head_hash = hashAt.get(r.seq);
  return recs.map((r) => JSON.stringify(r));
}

describe('file audit chain', () => {
  let file: string;
  beforeEach(async () => {
    file = tempFile();
    await writeEvents(fileTrail(file), 12);
  });

  it('links events 1..n from the genesis hash and verifies', async () => {
    const recs = readLines(file).map((l) => JSON.parse(l) as Rec);
    const events = recs.filter((r) => r.type !== 'checkpoint');
    expect(events.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(events[0]!.prev_hash).toBe(GENESIS_HASH);
    expect(events[1]!.prev_hash).toBe(events[0]!.hash);
    expect(events[0]).not.toHaveProperty('trace_id'); // undefined fields are not stored
    // every 5 records, plus the final one at close
    expect(recs.filter((r) => r.type === 'checkpoint').map((r) => r.seq)).toEqual([5, 10, 12]);
    const res = await verifyFile(file, { hmacKey: HMAC_KEY, requireSealed: true });
    expect(res).toMatchObject({ ok: true, events: 12, writers: 1, checkpoints: 3, warnings: [] });
  });

  it('detects a modified field: hash_mismatch at that seq', async () => {
    const lines = readLines(file);
    const i = lineOfSeq(lines, 4);
    lines[i] = lines[i]!.replace('"decision":"allow"', '"decision":"deny"');
    writeLines(file, lines);
    const res = await verifyFile(file, { hmacKey: HMAC_KEY });
    expect(res).toMatchObject({ ok: false, code: 'hash_mismatch', seq: 4, line: i + 1 });
  });

  it('detects a deleted event: seq_gap at the missing seq', async () => {
    const lines = readLines(file);
    lines.splice(lineOfSeq(lines, 7), 1);
    writeLines(file, lines);
    const res = await verifyFile(file, { hmacKey: HMAC_KEY });
    expect(res).toMatchObject({ ok: false, code: 'seq_gap', seq: 7, writer: 'replica-a' });
  });

  it('detects two swapped events: out_of_order', async () => {
    const lines = readLines(file);
    const [a, b] = [lineOfSeq(lines, 3), lineOfSeq(lines, 4)];
    [lines[a], lines[b]] = [lines[b]!, lines[a]!];
    writeLines(file, lines);
    const res = await verifyFile(file, { hmacKey: HMAC_KEY });
    expect(res).toMatchObject({ ok: false, code: 'out_of_order', seq: 3, line: a + 1 });
  });

  it('detects a replaced event whose seq fits: prev_hash_mismatch', async () => {
    const lines = readLines(file);
    const i = lineOfSeq(lines, 8);
    const r = JSON.parse(lines[i]!) as Rec;
    r.reason = 'allowed';
    r.prev_hash = 'f'.repeat(64);
    r.hash = recordHash(r);
    lines[i] = JSON.stringify(r);
    writeLines(file, lines);
    const res = await verifyFile(file, { hmacKey: HMAC_KEY });
    expect(res).toMatchObject({ ok: false, code: 'prev_hash_mismatch', seq: 8 });
  });

  it('detects events removed before the final checkpoint: truncated', async () => {
    const lines = readLines(file);
    const kept = lines.filter((_, i) => i !== lineOfSeq(lines, 11) && i !== lineOfSeq(lines, 12));
    writeLines(file, kept);
    const res = await verifyFile(file, { hmacKey: HMAC_KEY });
    expect(res).toMatchObject({ ok: false, code: 'truncated', seq: 11 });
  });

  it('a tail cut at a checkpoint only shows as a warning, or fails with requireSealed', async () => {
    const lines = readLines(file);
    writeLines(file, lines.slice(0, lineOfSeq(lines, 8) + 1));
    const res = await verifyFile(file, { hmacKey: HMAC_KEY });
    expect(res.ok).toBe(true);
    expect(res.ok && res.warnings.map((w) => w.code)).toEqual(['unanchored_tail']);
    const sealed = await verifyFile(file, { hmacKey: HMAC_KEY, requireSealed: true });
    expect(sealed).toMatchObject({ ok: false, code: 'truncated', seq: 6 });
  });

  it('detects a consistent rewrite without the key: checkpoint_invalid', async () => {
    writeLines(
      file,
      rewriteFrom(readLines(file), 2, (r) => (r.decision = 'deny')),
    );
    const res = await verifyFile(file, { hmacKey: HMAC_KEY });
    expect(res).toMatchObject({ ok: false, code: 'checkpoint_invalid', seq: 5 });
    // Without the key the same rewrite passes, and the result says it is unauthenticated.
    const unkeyed = await verifyFile(file);
    expect(unkeyed.ok && unkeyed.warnings.map((w) => w.code)).toContain('unauthenticated');
  });

  it('detects a rewrite that left the checkpoints alone: checkpoint_mismatch', async () => {
    const lines = readLines(file);
    const rewritten = rewriteFrom(lines, 2, (r) => (r.agent_id = 'agent-x'));
    const keptCheckpoints = rewritten.map((l, i) => (l.includes('"checkpoint"') ? lines[i]! : l));
    writeLines(file, keptCheckpoints);
    const res = await verifyFile(file, { hmacKey: HMAC_KEY });
    expect(res).toMatchObject({ ok: false, code: 'checkpoint_mismatch', seq: 5 });
  });

  it('detects a line that is not JSON: malformed', async () => {
    const lines = readLines(file);
    const i = lineOfSeq(lines, 2);
    lines[i] = lines[i]!.slice(0, -1);
    writeLines(file, lines);
    const res = await verifyFile(file, { hmacKey: HMAC_KEY });
    expect(res).toMatchObject({ ok: false, code: 'malformed', seq: 2, line: i + 1 });
  });

  it('rejects unsigned checkpoints when a key is expected', async () => {
    const unsigned = tempFile();
    await writeEvents(fileTrail(unsigned, { hmacKey: undefined }), 6);
    expect(await verifyFile(unsigned, { hmacKey: HMAC_KEY })).toMatchObject({
      ok: false,
      code: 'checkpoint_invalid',
      seq: 5,
    });
    const res = await verifyFile(unsigned);
    expect(res).toMatchObject({ ok: true, events: 6, checkpoints: 2 });
    expect(res.ok && res.warnings.map((w) => w.code)).toEqual(['unauthenticated']);
  });
});

describe('canonical JSON fast path', () => {
  it('is byte-identical to the RFC 8785 library for flat records', async () => {
    const fc = (await import('fast-check')).default;
    const canonicalize = (await import('canonicalize')).default;
    const { flatCanonicalJson } = await import('../../src/audit/chain.js');
    const value = fc.oneof(
      fc.string({ unit: 'grapheme' }),
      fc.string(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
    );
    fc.assert(
      fc.property(fc.dictionary(fc.string({ unit: 'grapheme' }), value, { maxKeys: 12 }), (rec) => {
        const fast = flatCanonicalJson(rec);
        if (fast !== undefined) expect(fast).toBe(canonicalize(rec));
      }),
      { numRuns: 2000 },
    );
    expect(flatCanonicalJson({ b: 1, a: 'x', é: true, Z: null })).toBe(
      canonicalize({ b: 1, a: 'x', é: true, Z: null }),
    );
    expect(flatCanonicalJson({ a: { nested: 1 } })).toBeUndefined();
    expect(flatCanonicalJson({ a: '\ud800' })).toBeUndefined();
  });
});

describe('sealing fast path', () => {
  /** The record sealed from `body` hashes and stores exactly what the RFC 8785 library gives. */
  async function expectLibraryEquivalent(
    body: Record<string, unknown>,
    writer: string,
    head: { seq: number; hash: string },
  ): Promise<void> {
    const canonicalize = (await import('canonicalize')).default;
    const { sealRecord, storedLine, storedLinesBuffer, sha256Hex } =
      await import('../../src/audit/chain.js');
    const before = { ...body }; // sealing may write into the body itself
    const rec = sealRecord(body as never, writer, head) as unknown as Record<string, unknown>;
    const expected: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(before)) {
      if (v === undefined || k === 'hash') continue;
      expected[k] = typeof v === 'number' && !Number.isFinite(v) ? null : v;
    }
    Object.assign(expected, { writer, seq: head.seq + 1, prev_hash: head.hash });
    expect(rec.hash).toBe(sha256Hex(canonicalize(expected)!));
    const stored = JSON.parse(storedLine(rec as never)) as Record<string, unknown>;
    // Compared as JSON: -0 is stored (and hashed, by JCS too) as 0.
    expect(stored).toEqual(JSON.parse(JSON.stringify({ ...expected, hash: rec.hash })));
    expect(recordHash(stored)).toBe(rec.hash);
    // The bytes a sink writes are that line, whatever the characters in it.
    expect(storedLinesBuffer([rec as never], 'after').toString('utf8')).toBe(
      `${storedLine(rec as never)}\n`,
    );
  }

  it('writes sealed and unsealed records side by side, newline-separated or -terminated', async () => {
    const { sealRecord, storedLine, storedLinesBuffer } = await import('../../src/audit/chain.js');
    const head = { seq: 0, hash: '0'.repeat(64) };
    const sealed = sealRecord(
      {
        agent_id: 'ä-gent ✓',
        decision: 'allow',
        prev_hash: '',
        seq: 0,
        type: 'decision',
        writer: '',
      } as never,
      'w1',
      head,
    );
    const plain = { type: 'checkpoint', writer: 'w1', seq: 1, head_hash: sealed.hash, time: 'ü' };
    const records = [sealed, plain, sealed] as never[];
    const lines = records.map((r) => storedLine(r));
    expect(storedLinesBuffer(records, 'between').toString('utf8')).toBe(lines.join('\n'));
    expect(storedLinesBuffer(records, 'after').toString('utf8')).toBe(`${lines.join('\n')}\n`);
    expect(JSON.parse(lines[0]!).hash).toBe(sealed.hash);
  });

  it('hashes what the library canonicalises and stores a line that re-hashes to it', async () => {
    const fc = (await import('fast-check')).default;
    const value = fc.oneof(
      fc.string({ unit: 'grapheme' }),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.constant(undefined),
      fc.constant(Infinity),
    );
    // Keys include the chain's own names, which the chain must override.
    const key = fc.oneof(
      fc.string({ unit: 'grapheme' }),
      fc.constantFrom('seq', 'writer', 'prev_hash', 'hash', 'type', '__proto__', '7'),
    );
    await fc.assert(
      fc.asyncProperty(fc.dictionary(key, value, { maxKeys: 14 }), (body) =>
        expectLibraryEquivalent(body, 'w-1', { seq: 41, hash: 'a'.repeat(64) }),
      ),
      { numRuns: 2000 },
    );
  });

  it('seals a body with chain slots in canonical key order in place, to the same hash and line', async () => {
    const fc = (await import('fast-check')).default;
    const value = fc.oneof(
      fc.string({ unit: 'grapheme' }),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.boolean(),
      fc.constant(null),
      fc.constant(undefined),
    );
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.string(), value, { maxKeys: 14 }), (dict) => {
        // What decisionEvent builds: every key, the chain's slots included, in sorted order.
        const body: Record<string, unknown> = {};
        const withSlots: Record<string, unknown> = { ...dict, prev_hash: '', seq: 0, writer: '' };
        for (const k of Object.keys(withSlots).sort()) body[k] = withSlots[k];
        return expectLibraryEquivalent(body, 'w-2', { seq: 41, hash: 'b'.repeat(64) });
      }),
      { numRuns: 2000 },
    );
  });
});
