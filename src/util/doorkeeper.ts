// "Have I seen this key recently?" without keeping the key: a fixed table of 32-bit key hashes.
// Gates per-key caches that only pay off for keys that come back (a response template, a parsed
// SPIFFE ID): a key is cached on its second sighting, so a stream of keys that never repeat —
// a registry cache miss per request — leaves nothing behind for the garbage collector to copy
// and promote. A stale or colliding slot only changes *whether* something is cached, never what
// a cached value is, so an approximate answer is safe.

export class Doorkeeper {
  private readonly slots: Uint32Array;
  private readonly mask: number;

  /** `size` is rounded up to a power of two; a key is remembered until another key takes its slot. */
  constructor(size: number) {
    let n = 1;
    while (n < size) n <<= 1;
    this.slots = new Uint32Array(n);
    this.mask = n - 1;
  }

  /** True when `key` was seen since its slot was last taken (and forgets it); else remembers it. */
  seenBefore(key: string): boolean {
    const h = hash32(key) || 1; // 0 marks an empty slot
    const i = h & this.mask;
    if (this.slots[i] === h) {
      this.slots[i] = 0;
      return true;
    }
    this.slots[i] = h;
    return false;
  }
}

/** FNV-1a over UTF-16 code units, 32 bits. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
