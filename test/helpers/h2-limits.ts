// Reading the gRPC listener's limit and error counters from a running server's metrics.
import type { RunningApp } from '../../src/server/app.js';

export async function limitCount(app: RunningApp, limit: string): Promise<number> {
  const m = await app.metrics.grpcLimits.get();
  return m.values.find((v) => v.labels.limit === limit)?.value ?? 0;
}

export async function errorsSent(app: RunningApp, error: string, scope: string): Promise<number> {
  const m = await app.metrics.grpcErrors.get();
  return m.values.find((v) => v.labels.error === error && v.labels.scope === scope)?.value ?? 0;
}

export async function bufferedBytes(app: RunningApp): Promise<number> {
  const m = await app.metrics.grpcBufferedBytes.get();
  return m.values[0]?.value ?? 0;
}

/** RFC 9113 error codes, as the tests expect them on the wire. */
export const H2_ERROR = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  ENHANCE_YOUR_CALM: 0xb,
} as const;

/** Frame types and flags, likewise. */
export const T = {
  DATA: 0,
  HEADERS: 1,
  PRIORITY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;
export const END_STREAM = 0x1;
export const END_HEADERS = 0x4;
