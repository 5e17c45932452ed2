// Cuts a connection's bytes into frames: the client preface first, then 9-octet frame headers and
// their payloads, handed on as views of the read. A frame split across reads is kept (copied when
// reads share one buffer) and counted against the memory budget until its last byte arrives.
import { ConnectionError, ErrorCode, FRAME_HEADER_BYTES, MAX_FRAME, PREFACE } from './frames.js';

export interface FrameSink {
  onFrame(type: number, flags: number, id: number, payload: Buffer): void;
  /** Whether the connection ended while handling a frame (nothing more is read then). */
  readonly dead: boolean;
  /** Copies bytes that must outlive this read. */
  keep(b: Buffer): Buffer;
  /** Records bytes of a partial frame held between reads; false when the connection was ended. */
  hold(delta: number): boolean;
  /** Not HTTP/2 with prior knowledge (e.g. HTTP/1.1): nothing sensible to answer. */
  notHttp2(): void;
}

const EMPTY = Buffer.alloc(0);

export class FrameReader {
  prefaceSeen = false;
  private rest: Buffer = EMPTY;
  private held = 0;

  constructor(private readonly sink: FrameSink) {}

  /** Handles one read; throws ConnectionError for a frame larger than our MAX_FRAME_SIZE. */
  read(d: Buffer): void {
    const buf = this.rest.length === 0 ? d : Buffer.concat([this.rest, d]);
    let at = 0;
    if (!this.prefaceSeen) {
      const n = Math.min(buf.length, PREFACE.length);
      if (!buf.subarray(0, n).equals(PREFACE.subarray(0, n))) return this.sink.notHttp2();
      if (buf.length < PREFACE.length) return this.keepRest(buf, d, 0);
      this.prefaceSeen = true;
      at = PREFACE.length;
    }
    while (buf.length - at >= FRAME_HEADER_BYTES) {
      const len = (buf[at]! << 16) | (buf[at + 1]! << 8) | buf[at + 2]!;
      if (len > MAX_FRAME) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'frame too large');
      if (buf.length - at < FRAME_HEADER_BYTES + len) break;
      const type = buf[at + 3]!;
      const flags = buf[at + 4]!;
      const id = buf.readUInt32BE(at + 5) & 0x7fffffff;
      const payload =
        len === 0 ? EMPTY : buf.subarray(at + FRAME_HEADER_BYTES, at + FRAME_HEADER_BYTES + len);
      at += FRAME_HEADER_BYTES + len;
      this.sink.onFrame(type, flags, id, payload);
      if (this.sink.dead) return;
    }
    this.keepRest(buf, d, at);
  }

  /** Lets go of a partial frame (the connection is closing). */
  drop(): void {
    this.rest = EMPTY;
    this.held = 0;
  }

  /** A partial frame left at the end of a read is kept (copied if it is still in `d`). */
  private keepRest(buf: Buffer, d: Buffer, at: number): void {
    const rest =
      at === buf.length ? EMPTY : buf === d ? this.sink.keep(buf.subarray(at)) : buf.subarray(at);
    this.rest = rest;
    if (rest.length === this.held) return;
    const delta = rest.length - this.held;
    this.held = rest.length;
    if (!this.sink.hold(delta))
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'memory budget');
  }
}
