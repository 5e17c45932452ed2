// HPACK's Huffman code (RFC 7541 §5.2, Appendix B) and a table-driven decoder: four bits per
// step through the code tree's internal nodes, the shape nghttp2 uses, so a string costs two
// table lookups per byte instead of a branch per bit (docs/adr/0002-own-hpack-decoder.md).

/**
 * Code length of every symbol, 0–255 then EOS (256), from RFC 7541 Appendix B. The code is
 * canonical (codes of one length are consecutive, in symbol order), so the lengths determine it.
 */
export const CODE_LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
  28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5,
  6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6,
  7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23,
  23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20, 22,
  22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22,
  23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27,
  27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25,
  24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];

const EOS = 256;
const EMIT = 1 << 16;
const FAIL = 1 << 17;
/** Per internal node and nibble: next node | symbol << 8 | EMIT | FAIL. */
const STEP = new Uint32Array(256 * 16);
/** Nodes where a string may end: reached from the root by at most seven 1-bits (EOS padding). */
const ACCEPT = new Uint8Array(256);

/** The canonical code of every symbol, MSB first. */
export function canonicalCodes(): number[] {
  const order = CODE_LENGTHS.map((_, s) => s).sort(
    (a, b) => CODE_LENGTHS[a]! - CODE_LENGTHS[b]! || a - b,
  );
  const codes: number[] = [];
  let code = 0;
  let prevLen = CODE_LENGTHS[order[0]!]!;
  order.forEach((s, i) => {
    const len = CODE_LENGTHS[s]!;
    if (i > 0) code = (code + 1) * 2 ** (len - prevLen);
    prevLen = len;
    codes[s] = code;
  });
  return codes;
}

function build(): void {
  // child[node * 2 + bit]: an internal node (>= 0), a leaf (-1 - symbol), or missing (-512).
  const child = new Int32Array(512 * 2).fill(-512);
  let nodes = 1;
  canonicalCodes().forEach((code, sym) => {
    let n = 0;
    for (let bit = CODE_LENGTHS[sym]! - 1; bit >= 0; bit--) {
      const slot = n * 2 + (Math.floor(code / 2 ** bit) & 1);
      if (bit === 0) child[slot] = -1 - sym;
      else {
        if (child[slot] === -512) child[slot] = nodes++;
        n = child[slot]!;
      }
    }
  });
  if (nodes > 256) throw new Error('Huffman tree larger than expected');
  for (let n = 0; n < nodes; n++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let cur = n;
      let entry = 0;
      for (let bit = 3; bit >= 0; bit--) {
        const c = child[cur * 2 + ((nibble >> bit) & 1)]!;
        if (c >= 0) cur = c;
        else if (c === -512 || c === -1 - EOS) {
          entry = FAIL;
          break;
        } else {
          entry = EMIT | ((-1 - c) << 8);
          cur = 0;
        }
      }
      STEP[n * 16 + nibble] = entry | cur;
    }
  }
  let n = 0;
  ACCEPT[0] = 1;
  for (let depth = 1; depth <= 7; depth++) {
    n = child[n * 2 + 1]!;
    ACCEPT[n] = 1;
  }
}
build();

/** The most bytes `length` Huffman-coded bytes decode to (the shortest code has 5 bits). */
export const maxDecodedLength = (length: number): number => Math.floor((length * 8) / 5);

/**
 * Decodes src[start, end) into dst from index 0 and returns the decoded length, or -1 when the
 * input is not a valid Huffman string (EOS inside it, or padding longer than 7 bits or not all
 * ones). dst must hold maxDecodedLength(end - start) bytes.
 */
export function huffmanDecode(
  src: Uint8Array,
  start: number,
  end: number,
  dst: Uint8Array,
): number {
  let node = 0;
  let out = 0;
  for (let i = start; i < end; i++) {
    const b = src[i]!;
    let e = STEP[(node << 4) | (b >> 4)]!;
    if ((e & FAIL) !== 0) return -1;
    if ((e & EMIT) !== 0) dst[out++] = (e >> 8) & 0xff;
    node = e & 0xff;
    e = STEP[(node << 4) | (b & 0xf)]!;
    if ((e & FAIL) !== 0) return -1;
    if ((e & EMIT) !== 0) dst[out++] = (e >> 8) & 0xff;
    node = e & 0xff;
  }
  return ACCEPT[node] === 1 ? out : -1;
}
