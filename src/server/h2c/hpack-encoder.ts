// HPACK encoding of what the server sends: a handful of fixed header blocks. No state is needed:
// every field is an indexed static entry or a literal "without indexing", so the peer's dynamic
// table is never used and blocks can be built once and reused.

/** An HPACK integer with an N-bit prefix whose high bits are `flags` (RFC 7541 §5.1). */
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

const STATIC_NAMES: Record<string, number> = { ':status': 8, 'content-type': 31 };

/**
 * A header block of literals without indexing (and `:status: 200` as static entry 8). Every block
 * starts with a dynamic table size update to 0: a peer that lowered SETTINGS_HEADER_TABLE_SIZE
 * expects one at the start of the next block (RFC 7541 §4.2; nghttp2 insists), and 0 is always
 * allowed.
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
