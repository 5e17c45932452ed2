// The limits that keep one peer from exhausting the process, modelled on Envoy's HTTP/2 codec
// (its `http2_protocol_options` flood settings and premature-reset check) and nghttp2's session
// options. docs/transport.md lists each with its default, what exceeding it does, and its metric
// label. The ones an operator may need to change are options; the rest are protocol shapes no
// well-behaved client comes near.
import type { ErrorCodeName } from './frames.js';

/** Every limit, as the `limit` label of agent_authz_grpc_limit_exceeded_total. */
export const LIMIT_NAMES = [
  'max_connections',
  'memory_budget',
  'connection_buffer',
  'output_buffer',
  'outbound_frames',
  'outbound_control_frames',
  'empty_frames',
  'small_data_frames',
  'continuation_frames',
  'priority_frames',
  'window_update_frames',
  'settings_entries',
  'stream_resets',
  'concurrent_streams',
  'header_block_size',
  'header_list_size',
  'header_bytes',
  'preface_timeout',
  'settings_timeout',
  'header_timeout',
  'stream_idle_timeout',
] as const;
export type LimitName = (typeof LIMIT_NAMES)[number];

/** What the transport reports: metrics count these, the log gets one line per connection. */
export interface TransportEvents {
  limitExceeded(limit: LimitName, peer: string, firstOnConnection: boolean): void;
  errorSent(code: ErrorCodeName, scope: 'connection' | 'stream'): void;
  connectionAccepted(): void;
}

/** What the listener is configured with (AGENT_AUTHZ_GRPC_* settings). */
export interface H2cOptions {
  readonly maxMessageBytes: number;
  readonly maxConcurrentStreams: number;
  readonly keepaliveMs: number;
  readonly keepaliveTimeoutMs: number;
  readonly maxConnectionAgeMs: number;
  readonly maxConnectionAgeGraceMs: number;
  /** Open connections; one more is answered with GOAWAY and closed. */
  readonly maxConnections: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE, enforced on the decoded size as advertised. */
  readonly maxHeaderListSize: number;
  /** Request and response bytes held by all connections together. */
  readonly maxBufferedBytes: number;
  /** Streams reset early by the peer, refused or reset by us: burst, then per second. */
  readonly resetBurst: number;
  readonly resetRate: number;
  /** A request that stops arriving, or an answer the peer's flow control stops, is reset. */
  readonly streamIdleTimeoutMs: number;
  /** Read into one buffer shared by all connections, where Node allows (default on). */
  readonly sharedReads?: boolean;
  /** Overrides of HANDSHAKE_TIMEOUT_MS and HEADER_BLOCK_TIMEOUT_MS (tests). */
  readonly handshakeTimeoutMs?: number;
  readonly headerBlockTimeoutMs?: number;
}

/** Consecutive HEADERS, CONTINUATION or DATA frames with nothing in them and no END_STREAM. */
export const MAX_CONSECUTIVE_EMPTY_FRAMES = 1;
/** DATA frames on a stream, or CONTINUATION frames in a block: this many, plus one per KiB. */
export const SMALL_FRAMES_ALLOWANCE = 8;
/** PRIORITY frames: this many per stream opened, plus as many again. */
export const MAX_PRIORITY_FRAMES_PER_STREAM = 100;
/** WINDOW_UPDATE frames: 5 + 2 × (streams opened + this many per DATA frame we sent). */
export const MAX_WINDOW_UPDATES_PER_DATA_FRAME = 10;
/** Entries in one SETTINGS frame (nghttp2's default). */
export const MAX_SETTINGS_ENTRIES = 32;
/** Frames, and control frames among them, written while the peer is not reading (Envoy's). */
export const MAX_OUTBOUND_FRAMES = 10_000;
export const MAX_OUTBOUND_CONTROL_FRAMES = 1_000;
/** Unsent output: reading stops above the first, the connection ends above the second. */
export const OUTPUT_PAUSE_BYTES = 256 * 1024;
export const OUTPUT_LIMIT_BYTES = 4 * 1024 * 1024;
/** Request bytes one connection may hold; a request past it is answered as too large. */
export const CONNECTION_BUFFER_BYTES = 16 * 1024 * 1024;
/**
 * Header-block cost beyond this many octets per block (the larger of its compressed and,
 * up to the limit, decoded size) is drawn from a per-connection budget: bursts of large metadata
 * pass, a stream of them ends the connection. Envoy's check calls carry a few hundred octets.
 */
export const HEADER_BYTES_FREE = 4096;
export const HEADER_BYTES_BURST = 1024 * 1024;
export const HEADER_BYTES_PER_SECOND = 256 * 1024;
/** The connection preface and the peer's first SETTINGS, and its ACK of ours, must come this soon. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** A header block must not stay unfinished (HEADERS without END_HEADERS) longer than this. */
export const HEADER_BLOCK_TIMEOUT_MS = 5_000;

/** A budget refilled at a constant rate up to its burst size. */
export class TokenBucket {
  private tokens: number;
  private last = performance.now();

  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
  ) {
    this.tokens = burst;
  }

  take(n = 1): boolean {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.perSecond) / 1000);
    this.last = now;
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }
}
