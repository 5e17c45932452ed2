// The gRPC message framing on the wire: a 1-byte compressed flag and a 4-byte big-endian length
// before every message.
import { gunzipSync, inflateSync } from 'node:zlib';

/** Bytes of the length prefix before every gRPC message. */
export const PREFIX_BYTES = 5;
const INFLATE_RATIO = 32;
const INFLATE_FLOOR = 64 * 1024;

/**
 * One length-prefixed gRPC message, possibly compressed (gzip or deflate, inflated to at most
 * `max` bytes); anything else — several messages, a short one, an unknown encoding — is invalid
 * (undefined), which the Check route answers with a malformed_request deny.
 */
export function unframe(
  buf: Buffer,
  encoding: string | undefined,
  max: number,
): Buffer | undefined {
  if (buf.length < PREFIX_BYTES) return undefined;
  const length = buf.readUInt32BE(1);
  if (buf.length !== PREFIX_BYTES + length) return undefined;
  const payload = buf.subarray(PREFIX_BYTES);
  if (buf[0] === 0) return payload;
  if (buf[0] !== 1) return undefined;
  // Inflating costs CPU for every byte it produces: a message may grow to 32 times its compressed
  // size (64 KiB at least), which no honest encoder of a CheckRequest comes near, not to `max`.
  const cap = Math.min(max, Math.max(INFLATE_FLOOR, INFLATE_RATIO * payload.length));
  try {
    if (encoding === 'gzip') return gunzipSync(payload, { maxOutputLength: cap });
    if (encoding === 'deflate') return inflateSync(payload, { maxOutputLength: cap });
  } catch {
    return undefined;
  }
  return undefined;
}

/** One gRPC message on the wire: the 5-byte prefix (uncompressed, length) and the bytes. */
export function frameMessage(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(PREFIX_BYTES + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, PREFIX_BYTES);
  return out;
}
