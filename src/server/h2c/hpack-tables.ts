// HPACK's two tables (RFC 7541 §2.3): the static table of Appendix A and a connection's dynamic
// table, which holds each entry's size and field kind next to its name and value.
import { fieldKind } from './field-rules.js';

export interface TableEntry {
  readonly name: string;
  readonly value: string;
  /** name + value + 32 octets (RFC 7541 §4.1); also what the entry adds to a header list's size. */
  readonly size: number;
  readonly kind: number;
  /** Whether the name alone is a valid field name: a literal that reuses it needs no rescan. */
  readonly nameValid: boolean;
}

function entry(name: string, value: string, kind = fieldKind(name, value, true)): TableEntry {
  return { name, value, size: name.length + value.length + 32, kind, nameValid: true };
}

const STATIC: [string, string][] = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

/** Entries 1–61; index 0 is unused, as in the RFC's numbering. */
export const STATIC_TABLE: readonly TableEntry[] = [
  entry('', '', 0),
  ...STATIC.map(([n, v]) => entry(n, v)),
];
export const STATIC_COUNT = STATIC.length;

/** The newest entry is index 62; adding evicts from the oldest until the table fits its size. */
export class DynamicTable {
  private ring: (TableEntry | undefined)[];
  /** Slot of the newest entry. */
  private head = 0;
  private count = 0;
  size = 0;

  constructor(private maxSize: number) {
    this.ring = new Array<TableEntry | undefined>(Math.floor(maxSize / 32) + 1);
  }

  get length(): number {
    return this.count;
  }

  /** 0 is the newest entry. */
  at(i: number): TableEntry | undefined {
    if (i >= this.count) return undefined;
    return this.ring[(this.head + i) % this.ring.length];
  }

  add(name: string, value: string, kind: number, nameValid: boolean): void {
    const e: TableEntry = { name, value, size: name.length + value.length + 32, kind, nameValid };
    // An entry larger than the table empties it and is not added (RFC 7541 §4.4).
    this.evictTo(this.maxSize - e.size);
    if (e.size > this.maxSize) return;
    this.head = (this.head + this.ring.length - 1) % this.ring.length;
    this.ring[this.head] = e;
    this.count++;
    this.size += e.size;
  }

  setMaxSize(maxSize: number): void {
    this.maxSize = maxSize;
    this.evictTo(maxSize);
  }

  private evictTo(target: number): void {
    while (this.count > 0 && this.size > Math.max(0, target)) {
      const slot = (this.head + this.count - 1) % this.ring.length;
      this.size -= this.ring[slot]!.size;
      this.ring[slot] = undefined;
      this.count--;
    }
  }
}
