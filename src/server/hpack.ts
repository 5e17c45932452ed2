// HPACK (RFC 7541) for the h2c transport. Decoding uses hpack.js's bit decoder, Huffman code and
// tables (one dynamic table per connection, as the RFC requires); the loop that turns a header
// block into name/value pairs is here so that no stream machinery runs per header. Encoding needs
// no state: every header we send is an indexed static entry or a literal "without indexing".
import { createRequire } from 'node:module';

interface HpackDecoder {
  push(chunk: Buffer): void;
  isEmpty(): boolean;
  decodeBit(): number;
  decodeInt(): number;
  decodeStr(): ArrayLike<number>;
  bitOffset: number;
}
interface HpackTable {
  lookup(index: number): { name: string; value: string; nameSize: number };
  add(name: string, value: string, nameSize: number, valueSize: number): void;
  updateSize(size: number): void;
}
interface HpackModule {
  decoder: { create(): HpackDecoder };
  table: { create(o: { maxSize: number }): HpackTable };
}
const hpack = createRequire(import.meta.url)('hpack.js') as HpackModule;

/** The decoder's dynamic table limit: HTTP/2's default SETTINGS_HEADER_TABLE_SIZE, which we keep. */
export const HEADER_TABLE_SIZE = 4096;

export class HpackError extends Error {}

/** Decodes one connection's header blocks, in the order they arrive. */
export class HeaderDecoder {
  private readonly table = hpack.table.create({ maxSize: HEADER_TABLE_SIZE });
  /** Empty between blocks: a block is decoded whole, and any error ends the connection. */
  private readonly d = hpack.decoder.create();

  /**
   * Name/value pairs in block order; throws HpackError (a connection error) on bad input. The
   * whole block is always decoded (the dynamic table must stay in step with the peer's); its
   * size is bounded by the caller.
   */
  decode(block: Buffer): [string, string][] {
    const out: [string, string][] = [];
    this.decodeEach(block, (name, value) => out.push([name, value]));
    return out;
  }

  /** As decode(), handing each field to `visit` instead of collecting pairs; returns the count. */
  decodeEach(block: Buffer, visit: (name: string, value: string) => void): number {
    const d = this.d;
    d.push(block);
    let fields = 0;
    try {
      while (!d.isEmpty()) {
        if (d.decodeBit() === 1) {
          const e = this.table.lookup(d.decodeInt());
          fields++;
          visit(e.name, e.value);
        } else {
          const incremental = d.decodeBit() === 1;
          if (!incremental) {
            if (d.decodeBit() === 1) {
              // Dynamic table size update (001xxxxx): only before the block's first field.
              if (fields > 0) throw new HpackError('table size update after a field');
              this.table.updateSize(d.decodeInt());
              continue;
            }
            d.decodeBit(); // never-indexed flag: nothing to do for a decoder that does not re-encode
          }
          const index = d.decodeInt();
          let name: string;
          let nameSize: number;
          if (index === 0) {
            const raw = d.decodeStr();
            name = text(raw);
            nameSize = raw.length;
          } else {
            const e = this.table.lookup(index);
            name = e.name;
            nameSize = e.nameSize;
          }
          const raw = d.decodeStr();
          const value = text(raw);
          if (incremental) this.table.add(name, value, nameSize, raw.length);
          fields++;
          visit(name, value);
        }
      }
    } catch (err) {
      throw err instanceof HpackError ? err : new HpackError((err as Error).message);
    }
    return fields;
  }
}

function text(bytes: ArrayLike<number>): string {
  return Buffer.isBuffer(bytes) ? bytes.toString('latin1') : Buffer.from(bytes).toString('latin1');
}

/** An HPACK integer with an N-bit prefix whose high bits are `flags`. */
function int(value: number, prefixBits: number, flags: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [flags | value];
  const out = [flags | max];
  value -= max;
  while (value >= 128) {
    out.push((value & 0x7f) | 0x80);
    value >>>= 7;
  }
  out.push(value);
  return out;
}

function literal(s: string): Buffer {
  const bytes = Buffer.from(s, 'latin1');
  return Buffer.concat([Buffer.from(int(bytes.length, 7, 0)), bytes]);
}

/**
 * A header block of literals "without indexing" (and `:status: 200` as static entry 8), so the
 * peer's dynamic table is never used and blocks can be built once and reused. Every block starts
 * with a dynamic table size update to 0: a peer that lowered SETTINGS_HEADER_TABLE_SIZE expects
 * one at the start of the next block (RFC 7541 §4.2; nghttp2 insists), and 0 is always allowed.
 */
export function encodeHeaders(headers: readonly (readonly [string, string])[]): Buffer {
  const parts: Buffer[] = [Buffer.from([0x20])];
  for (const [name, value] of headers) {
    const staticName = STATIC_NAMES[name];
    if (name === ':status' && value === '200') parts.push(Buffer.from([0x88]));
    else if (staticName !== undefined)
      parts.push(Buffer.from(int(staticName, 4, 0)), literal(value));
    else parts.push(Buffer.from([0]), literal(name), literal(value));
  }
  return Buffer.concat(parts);
}
const STATIC_NAMES: Record<string, number> = { ':status': 8, 'content-type': 31 };
