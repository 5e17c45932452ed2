// The protobuf wire primitives of the hand-written encoder: a sizing pass records every length,
// then a writing pass fills a buffer of exactly that size, so nothing is copied, forked or grown.

// Wire types; a field's tag is (field number << 3) | wire type.
export const VARINT = 0;
export const LEN = 2;
/** Bytes of every tag written here: all its field numbers are below 16. */
export const TAG_BYTES = 1;

export function tag(field: number, wireType: number): number {
  return (field << 3) | wireType;
}

/** Byte length of a string as UTF-8, counted in JS for short ASCII (cheaper than a native call). */
function utf8Length(s: string): number {
  if (s.length > 64) return Buffer.byteLength(s, 'utf8');
  for (let i = 0; i < s.length; i++)
    if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s, 'utf8');
  return s.length;
}

export function varintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

/** First pass: total size, recording each string's byte length and each nested message's length. */
export class Sizer {
  readonly sizes: number[] = [];
  str(s: string): number {
    const n = utf8Length(s);
    this.sizes.push(n);
    return TAG_BYTES + varintSize(n) + n;
  }
  /** Reserves a slot for a nested message's length, filled once its body is sized. */
  open(): number {
    this.sizes.push(0);
    return this.sizes.length - 1;
  }
  close(slot: number, n: number): number {
    this.sizes[slot] = n;
    return TAG_BYTES + varintSize(n) + n;
  }
}

/** Second pass: writes what the Sizer measured, taking the lengths in the order it recorded them. */
export class BufferWriter {
  private out: Buffer = Buffer.alloc(0);
  private sizes: number[] = [];
  private pos = 0;
  private si = 0;

  reset(out: Buffer, sizes: number[]): void {
    this.out = out;
    this.sizes = sizes;
    this.pos = 0;
    this.si = 0;
  }

  varint(v: number): void {
    while (v > 0x7f) {
      this.out[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.out[this.pos++] = v;
  }

  str(s: string): void {
    const len = this.sizes[this.si++]!;
    this.varint(len);
    if (len === s.length && len <= 64) {
      for (let i = 0; i < len; i++) this.out[this.pos++] = s.charCodeAt(i);
    } else this.pos += this.out.write(s, this.pos, len, 'utf8');
  }

  taggedVarint(tag: number, v: number): void {
    this.varint(tag);
    this.varint(v);
  }

  taggedStr(tag: number, s: string): void {
    this.varint(tag);
    this.str(s);
  }

  /** Writes the next recorded nested-message length. */
  len(): void {
    this.varint(this.sizes[this.si++]!);
  }
}
