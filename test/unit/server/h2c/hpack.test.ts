// HPACK decoding against RFC 7541 Appendix C, its error cases, the header-list limit and the
// field rules of RFC 9113 §8.2.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FieldKind } from '../../../../src/server/h2c/field-rules.js';
import { HeaderDecoder, HpackError } from '../../../../src/server/h2c/hpack-decoder.js';
import { encodeHeaders } from '../../../../src/server/h2c/hpack-encoder.js';
import { huffmanDecode, maxDecodedLength } from '../../../../src/server/h2c/huffman.js';
import { huffmanEncode, indexedField, literalField } from '../../../helpers/hpack.js';

const hex = (h: string) => Buffer.from(h.replace(/\s+/g, ''), 'hex');

function decodeAll(d: HeaderDecoder, block: Buffer): [string, string][] {
  const out: [string, string][] = [];
  d.decode(block, (n, v) => out.push([n, v]));
  return out;
}

const REQ1 = [
  [':method', 'GET'],
  [':scheme', 'http'],
  [':path', '/'],
  [':authority', 'www.example.com'],
];
const REQ2 = [...REQ1, ['cache-control', 'no-cache']];
const REQ3 = [
  [':method', 'GET'],
  [':scheme', 'https'],
  [':path', '/index.html'],
  [':authority', 'www.example.com'],
  ['custom-key', 'custom-value'],
];
const RES1 = [
  [':status', '302'],
  ['cache-control', 'private'],
  ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'],
  ['location', 'https://www.example.com'],
];
const RES2 = [[':status', '307'], ...RES1.slice(1)];
const RES3 = [
  [':status', '200'],
  ['cache-control', 'private'],
  ['date', 'Mon, 21 Oct 2013 20:13:22 GMT'],
  ['location', 'https://www.example.com'],
  ['content-encoding', 'gzip'],
  ['set-cookie', 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1'],
];

describe('HPACK decoder: RFC 7541 Appendix C', () => {
  it('C.2: one field of each representation', () => {
    const d = new HeaderDecoder();
    expect(decodeAll(d, hex('400a637573746f6d2d6b65790d637573746f6d2d686561646572'))).toEqual([
      ['custom-key', 'custom-header'],
    ]);
    expect(d.dynamicSize).toBe(55);
    expect(decodeAll(d, hex('040c2f73616d706c652f70617468'))).toEqual([[':path', '/sample/path']]);
    expect(decodeAll(d, hex('100870617373776f726406736563726574'))).toEqual([
      ['password', 'secret'],
    ]);
    expect(decodeAll(d, hex('82'))).toEqual([[':method', 'GET']]);
    expect(d.dynamicEntries()).toEqual([['custom-key', 'custom-header']]);
  });

  it.each([
    [
      'C.3 (raw strings)',
      [
        '828684410f7777772e6578616d706c652e636f6d',
        '828684be58086e6f2d6361636865',
        '828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565',
      ],
    ],
    [
      'C.4 (Huffman)',
      [
        '828684418cf1e3c2e5f23a6ba0ab90f4ff',
        '828684be5886a8eb10649cbf',
        '828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf',
      ],
    ],
  ])('%s: three requests on one connection', (_name, blocks) => {
    const d = new HeaderDecoder();
    expect(decodeAll(d, hex(blocks[0]!))).toEqual(REQ1);
    expect(d.dynamicSize).toBe(57);
    expect(decodeAll(d, hex(blocks[1]!))).toEqual(REQ2);
    expect(d.dynamicSize).toBe(110);
    expect(decodeAll(d, hex(blocks[2]!))).toEqual(REQ3);
    expect(d.dynamicSize).toBe(164);
    expect(d.dynamicEntries()).toEqual([
      ['custom-key', 'custom-value'],
      ['cache-control', 'no-cache'],
      [':authority', 'www.example.com'],
    ]);
  });

  it.each([
    [
      'C.5 (raw strings)',
      [
        `4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d54
         6e1768747470733a2f2f7777772e6578616d706c652e636f6d`,
        '4803333037c1c0bf',
        `88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69707738666f6f
         3d4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b2076
         657273696f6e3d31`,
      ],
    ],
    [
      'C.6 (Huffman)',
      [
        `488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f
         0b97c8e9ae82ae43d3`,
        '4883640effc1c0bf',
        `88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335df
         dfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007`,
      ],
    ],
  ])('%s: three responses in a 256-octet table, with eviction', (_name, blocks) => {
    const d = new HeaderDecoder(256);
    expect(decodeAll(d, hex(blocks[0]!))).toEqual(RES1);
    expect(d.dynamicSize).toBe(222);
    expect(decodeAll(d, hex(blocks[1]!))).toEqual(RES2);
    expect(d.dynamicSize).toBe(222);
    expect(decodeAll(d, hex(blocks[2]!))).toEqual(RES3);
    expect(d.dynamicSize).toBe(215);
    expect(d.dynamicEntries()).toEqual([
      ['set-cookie', 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1'],
      ['content-encoding', 'gzip'],
      ['date', 'Mon, 21 Oct 2013 20:13:22 GMT'],
    ]);
  });
});

describe('HPACK decoder: bad input is a COMPRESSION_ERROR', () => {
  it.each([
    ['index 0', '80'],
    ['an index past both tables', 'be'],
    ['a truncated integer', '7f'],
    ['an integer over 2^28', 'ff ff ff ff ff 7f'],
    ['a string longer than the block', '04 05 61 62'],
    ['Huffman padding of zeros', '00 81 00 01 61'],
    ['Huffman padding longer than 7 bits', `00 82 ff ff 01 61`],
    ['EOS inside a Huffman string', `00 84 ff ff ff ff 01 61`],
    ['a table size update after a field', '82 20'],
    ['a table size update above our setting', '3fe21f'],
  ])('%s', (_name, block) => {
    expect(() => decodeAll(new HeaderDecoder(), hex(block))).toThrow(HpackError);
  });

  it('accepts table size updates at the start of a block', () => {
    const d = new HeaderDecoder();
    decodeAll(d, hex('400a637573746f6d2d6b65790d637573746f6d2d686561646572'));
    expect(decodeAll(d, hex('20 3fe11f 82'))).toEqual([[':method', 'GET']]);
    expect(d.dynamicEntries()).toEqual([]);
  });
});

describe('HPACK decoder: header-list limit', () => {
  it('counts name + value + 32 per field and stops visiting past the limit, keeping the table in step', () => {
    const d = new HeaderDecoder();
    const block = Buffer.concat([
      indexedField(3), // :method POST, 7 + 4 + 32 = 43
      literalField('x-a', 'a'.repeat(100), { indexing: true }), // 3 + 100 + 32 = 135
      literalField('x-b', 'b'.repeat(100)), // not indexed: skipped once over
      literalField('x-c', 'c'.repeat(10), { indexing: true }), // indexed: still decoded and added
    ]);
    const seen: string[] = [];
    expect(d.decode(block, (n) => seen.push(n), 200)).toBe(false);
    expect(seen).toEqual([':method', 'x-a']);
    expect(d.listSize).toBe(43 + 135 + 135 + 45);
    expect(d.dynamicEntries()).toEqual([
      ['x-c', 'cccccccccc'],
      ['x-a', 'a'.repeat(100)],
    ]);
    // The next block can use the entries: the table stayed in step with the encoder's.
    expect(decodeAll(d, indexedField(62))).toEqual([['x-c', 'cccccccccc']]);
  });

  it('an indexed reference costs its entry size: a "bomb" of references is cut at the limit', () => {
    const d = new HeaderDecoder();
    decodeAll(d, literalField('x-big', 'v'.repeat(4000), { indexing: true }));
    const bomb = Buffer.alloc(10_000, 0xbe); // 10 000 references to the 4 KB entry
    let visited = 0;
    expect(d.decode(bomb, () => visited++, 65_536)).toBe(false);
    expect(visited).toBe(16); // 16 × 4 037 octets fit in 65 536
    expect(d.listSize).toBe(10_000 * 4037);
  });
});

describe('HPACK decoder: field kinds', () => {
  it.each([
    [literalField('x-ok', 'v'), FieldKind.REGULAR],
    [literalField(':path', '/'), FieldKind.PSEUDO],
    [literalField('X-Upper', 'v'), FieldKind.MALFORMED],
    [literalField('x:colon', 'v'), FieldKind.MALFORMED],
    [literalField('x sp', 'v'), FieldKind.MALFORMED],
    [literalField('', 'v'), FieldKind.MALFORMED],
    [literalField('connection', 'close'), FieldKind.MALFORMED],
    [literalField('transfer-encoding', 'chunked'), FieldKind.MALFORMED],
    [literalField('te', 'trailers'), FieldKind.REGULAR],
    [literalField('te', 'gzip'), FieldKind.MALFORMED],
    [literalField('x-v', ' leading'), FieldKind.MALFORMED],
    [literalField('x-v', 'trailing\t'), FieldKind.MALFORMED],
    [literalField('x-v', 'a\rb'), FieldKind.MALFORMED],
    [literalField('x-v', 'a\0b'), FieldKind.MALFORMED],
    [literalField('x-v', 'inner space is fine'), FieldKind.REGULAR],
  ])('%#', (block, kind) => {
    const kinds: number[] = [];
    new HeaderDecoder().decode(block, (_n, _v, k) => kinds.push(k));
    expect(kinds).toEqual([kind]);
  });

  it('keeps an invalid name invalid when a later literal reuses it by index', () => {
    const d = new HeaderDecoder();
    d.decode(literalField('Bad\r\nName', 'a', { indexing: true }), () => undefined);
    const kinds: number[] = [];
    // Literal without indexing, name from dynamic entry 62, value 'b'.
    d.decode(Buffer.from([0x0f, 0x2f, 0x01, 0x62]), (_n, _v, k) => kinds.push(k));
    expect(kinds).toEqual([FieldKind.MALFORMED]);
  });

  it('keeps a field kind in the dynamic table for indexed references', () => {
    const d = new HeaderDecoder();
    d.decode(literalField('X-Bad', 'v', { indexing: true }), () => undefined);
    const kinds: number[] = [];
    d.decode(indexedField(62), (_n, _v, k) => kinds.push(k));
    expect(kinds).toEqual([FieldKind.MALFORMED]);
  });
});

describe('Huffman code', () => {
  it('decodes what the RFC code table encodes, for any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const enc = huffmanEncode(bytes);
        const out = Buffer.alloc(maxDecodedLength(enc.length));
        const n = huffmanDecode(enc, 0, enc.length, out);
        expect(Buffer.from(out.subarray(0, n))).toEqual(Buffer.from(bytes));
      }),
    );
  });

  it('round-trips our encoder through our decoder', () => {
    const block = encodeHeaders([
      [':status', '200'],
      ['content-type', 'application/grpc'],
      ['grpc-message', 'x'.repeat(200)],
    ]);
    expect(decodeAll(new HeaderDecoder(), block)).toEqual([
      [':status', '200'],
      ['content-type', 'application/grpc'],
      ['grpc-message', 'x'.repeat(200)],
    ]);
  });
});
