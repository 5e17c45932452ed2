// HPACK pieces for tests that build header blocks by hand: Huffman coding from the RFC's code
// table, integers, and literal fields with or without indexing.
import type { HeaderDecoder } from '../../src/server/h2c/hpack-decoder.js';
import { CODE_LENGTHS, canonicalCodes } from '../../src/server/h2c/huffman.js';

const CODES = canonicalCodes();

export function huffmanEncode(bytes: Uint8Array): Buffer {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    const len = CODE_LENGTHS[b]!;
    const code = CODES[b]!;
    for (let i = len - 1; i >= 0; i--) {
      acc = (acc << 1) | (Math.floor(code / 2 ** i) & 1);
      if (++bits === 8) {
        out.push(acc);
        acc = 0;
        bits = 0;
      }
    }
  }
  if (bits > 0) out.push((acc << (8 - bits)) | ((1 << (8 - bits)) - 1)); // EOS prefix as padding
  return Buffer.from(out);
}

export function hpackInt(value: number, prefixBits: number, flags: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([flags | value]);
  const out = [flags | max];
  value -= max;
  while (value >= 128) {
    out.push((value & 0x7f) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return Buffer.from(out);
}

export function hpackString(s: string | Buffer, huffman = false): Buffer {
  const raw = typeof s === 'string' ? Buffer.from(s, 'latin1') : s;
  const body = huffman ? huffmanEncode(raw) : raw;
  return Buffer.concat([hpackInt(body.length, 7, huffman ? 0x80 : 0), body]);
}

/** A literal field with a new name: with incremental indexing (0x40) or without (0x00). */
export function literalField(
  name: string,
  value: string | Buffer,
  opts: { huffman?: boolean; indexing?: boolean } = {},
): Buffer {
  return Buffer.concat([
    Buffer.from([opts.indexing === true ? 0x40 : 0x00]),
    hpackString(name, opts.huffman),
    hpackString(value, opts.huffman),
  ]);
}

/** An indexed field (static 1–61, dynamic from 62). */
export function indexedField(index: number): Buffer {
  return hpackInt(index, 7, 0x80);
}

/** Every field of a block, in order, through a connection's decoder. */
export function decodeFields(decoder: HeaderDecoder, block: Buffer): [string, string][] {
  const out: [string, string][] = [];
  decoder.decode(block, (name, value) => out.push([name, value]));
  return out;
}
