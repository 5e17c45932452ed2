// DATA frames (RFC 9113 §6.1): receive-side flow control, the frame-count and content-length
// rules, and the request body, kept as a view of the read when it arrives in one frame and
// otherwise copied into one growing buffer per stream (never a buffer per frame), within the
// connection's cap and the process budget.
import { PREFIX_BYTES } from '../grpc/framing.js';
import { calm, type FloodGuard } from './flood-guard.js';
import {
  ConnectionError,
  ErrorCode,
  Flag,
  FrameType,
  MAX_FRAME,
  MAX_WINDOW,
  frame32,
} from './frames.js';
import { SMALL_FRAMES_ALLOWANCE, type LimitName } from './limits.js';
import type { H2Stream } from './stream.js';
import type { Streams } from './streams.js';

/** Connection receive window; credit goes back to the peer as DATA arrives. */
export const CONNECTION_WINDOW = 16 * 1024 * 1024;

export interface RequestBodyOwner {
  readonly guard: FloodGuard;
  readonly streams: Streams;
  readonly maxMessageBytes: number;
  readonly tick: number;
  /**
   * Records body bytes: 'ok', 'connection' when they would pass the connection's cap, 'ended'
   * when the process budget ended this connection.
   */
  holdBody(delta: number): 'ok' | 'connection' | 'ended';
  limit(name: LimitName): void;
}

export class RequestBodies {
  /** Our SETTINGS_INITIAL_WINDOW_SIZE: holds the largest message in one go. */
  readonly streamWindow: number;
  /** What the peer may still send on the connection, and what arrived since we said so. */
  private recvWindow = CONNECTION_WINDOW;
  private released = 0;
  /** DATA frames and octets on streams we already closed: ignored, but not without bound. */
  private ignoredFrames = 0;
  private ignoredBytes = 0;
  private readonly limitBytes: number;

  constructor(private readonly c: RequestBodyOwner) {
    this.limitBytes = c.maxMessageBytes + PREFIX_BYTES;
    this.streamWindow = Math.min(MAX_WINDOW, this.limitBytes + MAX_FRAME);
  }

  onData(flags: number, id: number, payload: Buffer): void {
    if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on stream 0');
    let body = payload;
    if ((flags & Flag.PADDED) !== 0) {
      if (body.length < 1) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'padding');
      const pad = body[0]!;
      if (pad > body.length - 1)
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'padding too long');
      body = body.subarray(1, body.length - pad);
    }
    const end = (flags & Flag.END_STREAM) !== 0;
    this.c.guard.contentFrame(body.length, end);
    // The peer may not send past the window we gave it; the credit goes back as soon as the
    // bytes are here (memory is bounded by the buffer caps instead, so large requests on several
    // streams can never deadlock the connection).
    this.recvWindow -= payload.length;
    if (this.recvWindow < 0)
      throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'window exceeded');
    this.released += payload.length;
    const streams = this.c.streams;
    const s = streams.map.get(id);
    if (s === undefined || s.remoteClosed) {
      if (id > streams.lastStreamId)
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on an idle stream');
      if (s !== undefined && !s.abandoned) return streams.reset(id, ErrorCode.STREAM_CLOSED);
      if (s === undefined && !streams.recentlyReset(id))
        throw new ConnectionError(ErrorCode.STREAM_CLOSED, 'DATA on a closed stream');
      // The rest of a body we stopped reading, in flight before our RST_STREAM arrived.
      this.ignoredBytes += payload.length;
      const allowance = SMALL_FRAMES_ALLOWANCE * (1 + streams.resetsSent);
      if (++this.ignoredFrames > allowance + (this.ignoredBytes >> 10))
        throw calm('small_data_frames', 'too many small DATA frames');
      return;
    }
    s.lastActive = this.c.tick;
    s.received += payload.length;
    if (s.received > this.streamWindow) return streams.reset(id, ErrorCode.FLOW_CONTROL_ERROR);
    s.dataBytes += body.length;
    if (++s.dataFrames > SMALL_FRAMES_ALLOWANCE + (s.dataBytes >> 10))
      throw calm('small_data_frames', 'too many small DATA frames');
    // A body longer, or at its end shorter, than its content-length is malformed (§8.1.1).
    if (
      s.contentLength >= 0 &&
      (s.dataBytes > s.contentLength || (end && s.dataBytes !== s.contentLength))
    )
      return streams.reset(id, ErrorCode.PROTOCOL_ERROR);
    if (s.route !== undefined && !s.tooLarge && body.length > 0) this.append(s, body, end);
    if (end) {
      s.remoteClosed = true;
      streams.requestEnded(s);
    } else if (s.route !== undefined && s.tooLarge) {
      // Answered now (the Check route answers even this); RST_STREAM(NO_ERROR) after the answer
      // tells the client to stop sending the rest (RFC 9113 §8.1).
      s.remoteClosed = true;
      s.abandoned = true;
      streams.requestEnded(s);
    }
  }

  /** A WINDOW_UPDATE returning the connection credit, once enough of it has come back. */
  windowUpdate(): Buffer | undefined {
    if (this.released < CONNECTION_WINDOW / 8) return undefined;
    const f = frame32(FrameType.WINDOW_UPDATE, 0, this.released);
    this.recvWindow += this.released;
    this.released = 0;
    return f;
  }

  private append(s: H2Stream, bytes: Buffer, last: boolean): void {
    const need = s.bodyLength + bytes.length;
    if (need > this.limitBytes || this.announced(s, bytes) > this.limitBytes) return this.cut(s);
    // A request in one DATA frame is handed to its route as a view (routes decode before they
    // return); anything longer is copied.
    if (s.body === undefined && last) {
      s.body = bytes;
      s.bodyLength = bytes.length;
      return;
    }
    if (need > s.bodyHeld) {
      const announced = this.announced(s, bytes);
      let size = Math.min(Math.max(need, 2 * s.bodyHeld, 1024), this.limitBytes);
      if (announced >= need) size = Math.min(size, announced);
      const held = this.c.holdBody(size - s.bodyHeld);
      if (held === 'ended') throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'memory budget');
      if (held === 'connection') {
        this.c.limit('connection_buffer');
        return this.cut(s);
      }
      const grown = Buffer.allocUnsafe(size);
      if (s.body !== undefined) s.body.copy(grown, 0, 0, s.bodyLength);
      s.body = grown;
      s.bodyHeld = size;
    }
    bytes.copy(s.body!, s.bodyLength);
    s.bodyLength = need;
  }

  /** The gRPC message size the body's prefix announces, once the prefix is here (else -1). */
  private announced(s: H2Stream, bytes: Buffer): number {
    if (s.bodyLength >= PREFIX_BYTES) return PREFIX_BYTES + s.body!.readUInt32BE(1);
    if (s.bodyLength === 0 && bytes.length >= PREFIX_BYTES)
      return PREFIX_BYTES + bytes.readUInt32BE(1);
    return -1;
  }

  private cut(s: H2Stream): void {
    s.tooLarge = true;
    this.c.streams.dropBody(s);
  }
}
