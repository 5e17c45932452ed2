// Decision ids: random (version 4) UUIDs, one per check. crypto.randomUUID() assembles its text
// from 20 concatenated pieces, ~600 bytes of short-lived strings per call on the check path; here
// the 36 characters are written into one scratch buffer and read out as one string. The random
// bytes come from the same CSPRNG, drawn 256 ids at a time as randomUUID's own cache does.
import { randomFillSync } from 'node:crypto';

const BATCH = 256;
const HEX = Buffer.from('0123456789abcdef', 'latin1');
const random = Buffer.alloc(16 * BATCH);
let next = BATCH; // the pool starts empty: filled on first use
const text = Buffer.alloc(36);

/** A new random UUID (RFC 9562 version 4, lower-case hex). */
export function newDecisionId(): string {
  if (next === BATCH) {
    randomFillSync(random);
    next = 0;
  }
  const at = 16 * next++;
  random[at + 6] = (random[at + 6]! & 0x0f) | 0x40; // version 4
  random[at + 8] = (random[at + 8]! & 0x3f) | 0x80; // variant 10
  let o = 0;
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) text[o++] = 0x2d; // '-'
    const b = random[at + i]!;
    text[o++] = HEX[b >> 4]!;
    text[o++] = HEX[b & 0x0f]!;
  }
  return text.toString('latin1', 0, 36);
}
