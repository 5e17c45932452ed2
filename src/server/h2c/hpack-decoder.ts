// HPACK decoding (RFC 7541) of a connection's header blocks, in the order they arrive. It counts
// each block's header-list size as it goes (RFC 9113 §6.5.2) and stops handing fields out past
// the caller's limit, so an oversized or "bomb" block costs what its compressed bytes cost and
// no more; every block is still decoded as far as the dynamic table needs, to stay in step with
// the peer.
import { fieldKind, FieldKind, nameIsValid } from './field-rules.js';
import { DynamicTable, STATIC_COUNT, STATIC_TABLE, type TableEntry } from './hpack-tables.js';
import { huffmanDecode, maxDecodedLength } from './huffman.js';

/** Our SETTINGS_HEADER_TABLE_SIZE: HTTP/2's default, which we keep advertising. */
export const HEADER_TABLE_SIZE = 4096;

/** Undecodable input: a connection error of type COMPRESSION_ERROR. */
export class HpackError extends Error {}

/** A decoded field and its kind (field-rules.ts). */
export type FieldVisitor = (name: string, value: string, kind: number) => void;

/** Huffman output, shared by every connection: a block is decoded to the end before the next. */
let scratch = Buffer.allocUnsafe(4096);

export class HeaderDecoder {
  private readonly table: DynamicTable;
  private block: Buffer = Buffer.alloc(0);
  private pos = 0;
  private end = 0;
  /** The last block's header-list size: name + value + 32 octets per field. */
  listSize = 0;
  /** Fields in the last block. */
  fields = 0;

  constructor(private readonly maxTableSize = HEADER_TABLE_SIZE) {
    this.table = new DynamicTable(maxTableSize);
  }

  /** Entries in the dynamic table (newest first) and its size, for tests. */
  dynamicEntries(): [string, string][] {
    const out: [string, string][] = [];
    for (let i = 0; i < this.table.length; i++) {
      const e = this.table.at(i)!;
      out.push([e.name, e.value]);
    }
    return out;
  }

  get dynamicSize(): number {
    return this.table.size;
  }

  /**
   * Decodes one whole header block, handing each field to `visit` while the list is within
   * `maxListSize`; returns false when it went over (no field from there on is visited). Throws
   * HpackError on input that does not decode.
   */
  decode(block: Buffer, visit: FieldVisitor, maxListSize = Infinity): boolean {
    this.block = block;
    this.pos = 0;
    this.end = block.length;
    this.listSize = 0;
    this.fields = 0;
    let within = true;
    while (this.pos < this.end) {
      const b = block[this.pos]!;
      let e: TableEntry | undefined;
      let name: string;
      let value: string;
      let kind: number;
      if (b >= 0x80) {
        e = this.entry(this.int(7));
        name = e.name;
        value = e.value;
        kind = e.kind;
      } else if (b < 0x40 && b >= 0x20) {
        // Dynamic table size update (001xxxxx): only before the block's first field.
        if (this.fields > 0) throw new HpackError('table size update after a field');
        const size = this.int(5);
        if (size > this.maxTableSize) throw new HpackError('table size above our setting');
        this.table.setMaxSize(size);
        continue;
      } else {
        const indexed = b >= 0x40;
        const index = this.int(indexed ? 6 : 4);
        const nameEntry = index === 0 ? undefined : this.entry(index);
        // Past the limit, a field that will not be indexed is skipped, not decoded.
        const skip = !within && !indexed;
        name = nameEntry?.name ?? this.string(skip);
        value = this.string(skip);
        const nameValid = nameEntry?.nameValid ?? (skip || nameIsValid(name));
        kind = skip ? FieldKind.REGULAR : fieldKind(name, value, nameValid);
        if (indexed) this.table.add(name, value, kind, nameValid);
      }
      this.fields++;
      this.listSize += e?.size ?? name.length + value.length + 32;
      if (within && this.listSize > maxListSize) within = false;
      if (within) visit(name, value, kind);
    }
    return within;
  }

  private entry(index: number): TableEntry {
    if (index === 0) throw new HpackError('index 0');
    const e = index <= STATIC_COUNT ? STATIC_TABLE[index] : this.table.at(index - STATIC_COUNT - 1);
    if (e === undefined) throw new HpackError('index out of range');
    return e;
  }

  /** An integer with an N-bit prefix (RFC 7541 §5.1), at most 2^28 + prefix. */
  private int(prefixBits: number): number {
    const max = (1 << prefixBits) - 1;
    let value = this.block[this.pos++]! & max;
    if (value < max) return value;
    for (let shift = 0; shift <= 21; shift += 7) {
      if (this.pos >= this.end) throw new HpackError('truncated integer');
      const b = this.block[this.pos++]!;
      value += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return value;
    }
    throw new HpackError('integer too large');
  }

  /** A string literal (RFC 7541 §5.2), Huffman-coded or raw; '' when only skipped. */
  private string(skip: boolean): string {
    if (this.pos >= this.end) throw new HpackError('truncated string');
    const huffman = this.block[this.pos]! >= 0x80;
    const len = this.int(7);
    const start = this.pos;
    if (len > this.end - start) throw new HpackError('string beyond the block');
    this.pos += len;
    if (skip) return '';
    if (!huffman) return this.block.toString('latin1', start, start + len);
    const need = maxDecodedLength(len);
    if (scratch.length < need) scratch = Buffer.allocUnsafe(Math.max(need, 2 * scratch.length));
    const n = huffmanDecode(this.block, start, start + len, scratch);
    if (n < 0) throw new HpackError('invalid Huffman code');
    return scratch.toString('latin1', 0, n);
  }
}
