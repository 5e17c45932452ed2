// SHA-256 in one call. Node >= 20.12 has crypto.hash(), which builds no Hash object: on the check
// path (API key and token digests, audit chain) each Hash was a native object with a weak handle
// that every young-generation collection had to process. Older Node 20 falls back to createHash.
import * as crypto from 'node:crypto';

type Encoding = 'hex' | 'base64url';
const oneShot = (
  crypto as { hash?: (alg: string, data: string | Uint8Array, enc: Encoding) => string }
).hash;

export function sha256(data: string | Uint8Array, encoding: Encoding): string {
  if (oneShot !== undefined) return oneShot('sha256', data, encoding);
  const h = crypto.createHash('sha256');
  return (typeof data === 'string' ? h.update(data, 'utf8') : h.update(data)).digest(encoding);
}
