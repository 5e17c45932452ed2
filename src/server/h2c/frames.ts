// HTTP/2 framing (RFC 9113 §4, §6, §7): frame types, flags, error codes, settings, and the few
// helpers that write a frame. Everything else in the transport speaks in these names.

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const FRAME_HEADER_BYTES = 9;

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

/** Error codes (RFC 9113 §7), in GOAWAY and RST_STREAM. */
export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  ENHANCE_YOUR_CALM: 0xb,
} as const;
export type ErrorCodeName = keyof typeof ErrorCode;
export const ERROR_CODE_NAMES = Object.keys(ErrorCode) as ErrorCodeName[];
const NAME_OF = new Map(
  Object.entries(ErrorCode).map(([k, v]) => [v as number, k as ErrorCodeName]),
);
export const errorCodeName = (code: number): ErrorCodeName => NAME_OF.get(code) ?? 'INTERNAL_ERROR';

export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

export const DEFAULT_WINDOW = 65_535;
export const MAX_WINDOW = 2 ** 31 - 1;
/** Our SETTINGS_MAX_FRAME_SIZE: the protocol default, so every peer starts with it. */
export const MAX_FRAME = 16_384;
export const MAX_FRAME_LIMIT = 16_777_215;

/**
 * A connection error (RFC 9113 §5.4.1): GOAWAY with `code`, then the connection closes. `limit`
 * names the flood protection that fired, when one did (metrics and the log say which).
 */
export class ConnectionError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly limit?: string,
  ) {
    super(message);
  }
}

export function writeFrameHeader(
  out: Buffer,
  at: number,
  len: number,
  type: number,
  flags: number,
  id: number,
): void {
  out[at] = len >>> 16;
  out[at + 1] = (len >>> 8) & 0xff;
  out[at + 2] = len & 0xff;
  out[at + 3] = type;
  out[at + 4] = flags;
  out.writeUInt32BE(id, at + 5);
}

export function frame(type: number, flags: number, id: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  writeFrameHeader(out, 0, payload.length, type, flags, id);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/** A frame whose payload is one 32-bit value (RST_STREAM, WINDOW_UPDATE). */
export function frame32(type: number, id: number, value: number): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 4);
  writeFrameHeader(out, 0, 4, type, 0, id);
  out.writeUInt32BE(value >>> 0, FRAME_HEADER_BYTES);
  return out;
}

export function goawayFrame(lastStreamId: number, code: number, debug = ''): Buffer {
  const text = Buffer.from(debug, 'latin1');
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 8 + text.length);
  writeFrameHeader(out, 0, 8 + text.length, FrameType.GOAWAY, 0, 0);
  out.writeUInt32BE(lastStreamId, FRAME_HEADER_BYTES);
  out.writeUInt32BE(code, FRAME_HEADER_BYTES + 4);
  text.copy(out, FRAME_HEADER_BYTES + 8);
  return out;
}

export function settingsFrame(entries: readonly (readonly [number, number])[]): Buffer {
  const payload = Buffer.allocUnsafe(entries.length * 6);
  entries.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, i * 6);
    payload.writeUInt32BE(value, i * 6 + 2);
  });
  return frame(FrameType.SETTINGS, 0, 0, payload);
}

export const SETTINGS_ACK = frame(FrameType.SETTINGS, Flag.ACK, 0, Buffer.alloc(0));
