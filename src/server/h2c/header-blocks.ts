// HEADERS and CONTINUATION frames (RFC 9113 §6.2, §6.10): a header block is collected (copied
// when it spans frames, within a size and frame-count bound), decoded with the connection's HPACK
// decoder against the advertised header-list size, checked as an HTTP/2 message, and turned into
// a new stream, trailers on an open one, or a stream or connection error.
import { calm, type FloodGuard } from './flood-guard.js';
import { ConnectionError, ErrorCode, Flag } from './frames.js';
import { HeaderDecoder, HpackError } from './hpack-decoder.js';
import { SMALL_FRAMES_ALLOWANCE, type LimitName } from './limits.js';
import { RequestHead } from './request-head.js';
import type { Streams } from './streams.js';

export interface HeaderBlocksOwner {
  readonly guard: FloodGuard;
  readonly streams: Streams;
  readonly maxHeaderListSize: number;
  readonly tick: number;
  /** Copies bytes that must outlive this read (the read buffer may be shared). */
  keep(b: Buffer): Buffer;
  /** Records bytes held for a block in progress; false when the connection was ended. */
  hold(delta: number): boolean;
  limit(name: LimitName): void;
}

/** Not a wire flag: marks a HEADERS frame whose priority names its own stream. */
const SELF_DEPENDENT = 0x100;

interface Pending {
  readonly id: number;
  readonly flags: number;
  parts: Buffer[];
  /** Payload octets plus 9 per frame: a flood of empty frames is bounded too. */
  size: number;
  held: number;
  continuations: number;
  readonly started: number;
}

export class HeaderBlocks {
  private readonly decoder = new HeaderDecoder();
  private readonly head = new RequestHead();
  private pending: Pending | undefined;
  /** Compressed bytes a block may take: twice the header-list size it may decode to. */
  private readonly maxBlock: number;

  constructor(private readonly c: HeaderBlocksOwner) {
    this.maxBlock = 2 * c.maxHeaderListSize;
  }

  /** The stream of an unfinished block (only CONTINUATION may follow), else 0. */
  get pendingId(): number {
    return this.pending?.id ?? 0;
  }

  /** Tick at which the unfinished block started, if there is one. */
  get pendingSince(): number | undefined {
    return this.pending?.started;
  }

  onHeaders(frameFlags: number, id: number, payload: Buffer): void {
    let flags = frameFlags;
    if (id === 0 || id % 2 === 0)
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS on an invalid stream id');
    let body = payload;
    let pad = 0;
    if ((flags & Flag.PADDED) !== 0) {
      if (body.length < 1) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'padding');
      pad = body[0]!;
      body = body.subarray(1);
    }
    if ((flags & Flag.PRIORITY) !== 0) {
      if (body.length < 5) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'priority');
      // A stream that depends on itself is a stream error (RFC 9113 §5.3.1), once the block is
      // decoded to keep the HPACK table in step.
      if ((body.readUInt32BE(0) & 0x7fffffff) === id) flags |= SELF_DEPENDENT;
      body = body.subarray(5);
    }
    if (pad > body.length) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'padding too long');
    body = body.subarray(0, body.length - pad);
    const endHeaders = (flags & Flag.END_HEADERS) !== 0;
    this.c.guard.contentFrame(body.length, endHeaders && (flags & Flag.END_STREAM) !== 0);
    if (endHeaders) return this.complete(id, flags, body);
    // A block that goes on in CONTINUATION frames is kept until it ends.
    this.pending = {
      id,
      flags,
      parts: [],
      size: 0,
      held: 0,
      continuations: 0,
      started: this.c.tick,
    };
    this.add(this.pending, body);
  }

  onContinuation(flags: number, id: number, payload: Buffer): void {
    const p = this.pending;
    if (p === undefined || p.id !== id)
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'unexpected CONTINUATION');
    const end = (flags & Flag.END_HEADERS) !== 0;
    this.c.guard.contentFrame(payload.length, end);
    if (++p.continuations > SMALL_FRAMES_ALLOWANCE + (p.size >> 10))
      throw calm('continuation_frames', 'too many CONTINUATION frames');
    this.add(p, payload);
    if (!end) return;
    this.pending = undefined;
    const block = p.parts.length === 1 ? p.parts[0]! : Buffer.concat(p.parts);
    this.c.hold(-p.held);
    this.complete(id, p.flags, block);
  }

  private add(p: Pending, bytes: Buffer): void {
    p.size += 9 + bytes.length;
    if (p.size > this.maxBlock) throw calm('header_block_size', 'header block too large');
    if (bytes.length === 0) return;
    p.parts.push(this.c.keep(bytes));
    p.held += bytes.length;
    if (!this.c.hold(bytes.length))
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'memory budget');
  }

  /** Releases a block in progress (the connection is closing). */
  drop(): void {
    if (this.pending !== undefined) this.c.hold(-this.pending.held);
    this.pending = undefined;
  }

  private complete(id: number, flags: number, block: Buffer): void {
    const selfDependent = (flags & SELF_DEPENDENT) !== 0;
    const streams = this.c.streams;
    const existing = streams.map.get(id);
    const trailers = existing !== undefined || id <= streams.lastStreamId;
    const head = this.head;
    head.reset(trailers);
    let within: boolean;
    try {
      // Every block is decoded, even for streams we refuse: the dynamic table must stay in step.
      within = this.decoder.decode(block, head.visit, this.c.maxHeaderListSize);
    } catch (err) {
      if (err instanceof HpackError)
        throw new ConnectionError(ErrorCode.COMPRESSION_ERROR, err.message);
      throw err;
    }
    this.c.guard.headerBlock(block.length, this.decoder.listSize, this.c.maxHeaderListSize);
    head.finish();
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if (existing !== undefined) return this.trailers(existing.id, endStream, within);
    if (id <= streams.lastStreamId) {
      // A late frame on a stream we reset is ignored (RFC 9113 §5.1); any other reused or
      // decreasing id is a connection error (§5.1.1).
      if (streams.recentlyReset(id)) return;
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'stream id reused or decreasing');
    }
    if (!within) {
      // Over the advertised header-list size: this stream is answered, the others go on.
      streams.lastStreamId = id;
      this.c.limit('header_list_size');
      return streams.tooLargeHeaders(id, endStream);
    }
    // A request ending with its headers has no body: a content-length other than 0 is malformed.
    if (head.malformed !== undefined || (endStream && head.contentLength > 0) || selfDependent) {
      streams.lastStreamId = id;
      return streams.reset(id, ErrorCode.PROTOCOL_ERROR);
    }
    streams.open(id, endStream, head);
  }

  private trailers(id: number, endStream: boolean, within: boolean): void {
    const s = this.c.streams.map.get(id)!;
    if (s.abandoned) return; // we stopped reading it; our answer is on its way
    if (s.remoteClosed) return this.c.streams.reset(id, ErrorCode.STREAM_CLOSED);
    // Trailers must end the stream and carry no pseudo-header (RFC 9113 §8.1).
    if (!endStream || !within || this.head.malformed !== undefined)
      return this.c.streams.reset(id, ErrorCode.PROTOCOL_ERROR);
    if (s.contentLength >= 0 && s.dataBytes !== s.contentLength)
      return this.c.streams.reset(id, ErrorCode.PROTOCOL_ERROR);
    s.remoteClosed = true;
    this.c.streams.requestEnded(s);
  }
}
