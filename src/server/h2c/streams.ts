// A connection's streams: opening them from a request head, handing complete requests to their
// routes (answers.ts writes what they answer), resets either way, and the idle sweep. Stream ids follow RFC 9113 §5.1.1: each new one larger
// than the last; frames on a stream we reset are ignored for a while, as §5.1 allows.
import { unframe } from '../grpc/framing.js';
import type { Routes } from '../grpc/routes.js';
import { GRPC_STATUS } from '../grpc/status.js';
import { Answers } from './answers.js';
import type { FloodGuard } from './flood-guard.js';
import { ConnectionError, ErrorCode, FrameType, frame32 } from './frames.js';
import { encodeHeaders } from './hpack-encoder.js';
import type { LimitName } from './limits.js';
import type { Output } from './output.js';
import type { RequestHead } from './request-head.js';
import { H2Stream } from './stream.js';

/** Stream ids we reset whose late frames are still tolerated. */
const RECENT_RESETS = 1024;
/** What an open stream is charged against the memory budget (its objects take ~250 bytes). */
export const STREAM_COST = 512;

export interface StreamsOwner {
  readonly output: Output;
  readonly guard: FloodGuard;
  readonly routes: Routes;
  readonly maxMessageBytes: number;
  readonly maxConcurrentStreams: number;
  readonly tick: number;
  readonly goneAway: boolean;
  /** A stream-level limit fired (counted and logged once per connection). */
  limit(name: LimitName): void;
  /** A stream error we sent, by RFC 9113 code. */
  streamError(code: number): void;
  /** The last stream closed (the connection may finish after GOAWAY). */
  idle(): void;
  /** Releases `bytes` of request body from the budgets. */
  releaseBody(bytes: number): void;
  /** Records an open stream's cost; false when the budget ended the connection. */
  hold(delta: number): boolean;
}

export class Streams {
  readonly map = new Map<number, H2Stream>();
  lastStreamId = 0;
  /** Unary handlers still running, whether or not their stream is still open. */
  working = 0;
  private readonly recentResets = new Set<number>();
  /** Streams we reset while the peer could still send on them (late frames are its allowance). */
  resetsSent = 0;
  /** When the last stream opened (performance.now()): idle connections are evicted first. */
  lastOpened = performance.now();
  private readonly answers: Answers;

  constructor(private readonly c: StreamsOwner) {
    this.answers = new Answers(c.output, this);
  }

  get size(): number {
    return this.map.size;
  }

  /** A frame for a stream we reset recently, which RFC 9113 §5.1 says to ignore. */
  recentlyReset(id: number): boolean {
    return this.recentResets.has(id);
  }

  /** A new request (its id is larger than every earlier one; the caller checked). */
  open(id: number, endStream: boolean, head: RequestHead): void {
    this.lastStreamId = id;
    this.c.guard.streamOpened();
    // After our GOAWAY a stream may still cross it on the wire: refused, not held against the peer.
    if (this.c.goneAway) return this.refuse(id, false);
    // Handlers still running count too: resetting streams must not start unbounded work.
    if (Math.max(this.map.size, this.working) >= this.c.maxConcurrentStreams) {
      this.c.limit('concurrent_streams');
      return this.refuse(id);
    }
    const s = new H2Stream(id, endStream, head.encoding, head.contentLength, this.c.tick);
    this.add(s);
    this.lastOpened = performance.now();
    const { method, contentType } = head;
    if (
      method !== 'POST' ||
      contentType === undefined ||
      !contentType.startsWith('application/grpc')
    )
      return this.answers.headersOnly(
        s,
        encodeHeaders([[':status', method === 'POST' ? '415' : '405']]),
      );
    const route = this.c.routes.get(head.path ?? '');
    if (route === undefined)
      return this.answers.trailersOnly(s, GRPC_STATUS.UNIMPLEMENTED, 'unknown method');
    s.route = route;
    if (endStream) this.requestEnded(s);
  }

  /** A request over the advertised header-list size: answered, its body (if any) not read. */
  tooLargeHeaders(id: number, endStream: boolean): void {
    this.c.guard.streamOpened();
    this.c.guard.streamReset();
    const s = new H2Stream(id, endStream, undefined, -1, this.c.tick);
    this.add(s);
    this.answers.trailersOnly(s, GRPC_STATUS.RESOURCE_EXHAUSTED, 'header list too large');
  }

  private add(s: H2Stream): void {
    this.map.set(s.id, s);
    if (!this.c.hold(STREAM_COST))
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'memory budget');
  }

  /** The request is complete (or will not be read further): hand it to its route, once. */
  requestEnded(s: H2Stream): void {
    const route = s.route;
    if (route === undefined) return this.maybeClose(s);
    s.route = undefined;
    const body = s.body?.subarray(0, s.bodyLength);
    const max = this.c.maxMessageBytes;
    const message = s.tooLarge || body === undefined ? undefined : unframe(body, s.encoding, max);
    this.dropBody(s);
    if (route.kind === 'stream') {
      try {
        route.open(message, this.answers.streamCall(s));
      } catch (err) {
        this.answers.sendError(s, err);
      }
      return;
    }
    let result: Promise<Uint8Array> | Uint8Array;
    try {
      result = route.handle(message);
    } catch (err) {
      return this.answers.sendError(s, err);
    }
    if (result instanceof Uint8Array) return this.answers.respond(s, result);
    this.working++;
    result.then(
      (bytes) => {
        this.working--;
        this.answers.respond(s, bytes);
      },
      (err: unknown) => {
        this.working--;
        this.answers.sendError(s, err);
      },
    );
  }

  dropBody(s: H2Stream): void {
    if (s.bodyHeld > 0) this.c.releaseBody(s.bodyHeld);
    s.body = undefined;
    s.bodyHeld = s.bodyLength = 0;
  }

  /** Its trailers went out. */
  sent(s: H2Stream): void {
    s.localClosed = true;
    this.maybeClose(s);
  }

  /** A stream error (RFC 9113 §5.4.2): RST_STREAM, counted against the reset budget. */
  reset(id: number, code: number): void {
    const s = this.map.get(id);
    if (s !== undefined) {
      if (s.localClosed && s.remoteClosed) return;
      s.localClosed = s.remoteClosed = true;
      this.close(s);
    }
    this.sendReset(id, code);
    this.c.streamError(code);
    this.c.guard.streamReset();
  }

  /** REFUSED_STREAM for a stream we never started (RFC 9113 §8.7: safe to retry). */
  refuse(id: number, counted = true): void {
    this.sendReset(id, ErrorCode.REFUSED_STREAM);
    if (counted) this.c.guard.streamReset();
  }

  /** The peer reset a stream: early (before our answer) counts against the reset budget. */
  peerReset(id: number): void {
    const s = this.map.get(id);
    if (s === undefined) return;
    const early = !s.localClosed;
    s.localClosed = true; // nothing more may be sent on it
    this.close(s);
    if (early) this.c.guard.streamReset();
  }

  private sendReset(id: number, code: number): void {
    this.c.output.control(frame32(FrameType.RST_STREAM, id, code));
    this.resetsSent++;
    if (this.recentResets.size >= RECENT_RESETS) {
      const oldest = this.recentResets.values().next().value;
      if (oldest !== undefined) this.recentResets.delete(oldest);
    }
    this.recentResets.add(id);
  }

  maybeClose(s: H2Stream): void {
    if (!s.localClosed || !s.remoteClosed) return;
    if (s.abandoned && this.map.has(s.id)) this.sendReset(s.id, ErrorCode.NO_ERROR);
    this.close(s);
  }

  close(s: H2Stream): void {
    if (!this.map.delete(s.id)) return;
    this.c.hold(-STREAM_COST);
    this.dropBody(s);
    s.queue = [];
    this.c.output.forget(s);
    if (s.onClose !== undefined) for (const l of s.onClose.splice(0)) l();
    if (this.map.size === 0) this.c.idle();
  }

  closeAll(): void {
    for (const s of this.map.values()) {
      s.localClosed = true; // an answer still being decided has nowhere to go
      this.close(s);
    }
  }

  /**
   * Resets streams idle since `before`: a request that stopped arriving, or an answer the peer's
   * flow control holds back. Streams with nothing to wait for (a health Watch between updates,
   * a handler still deciding) are left alone.
   */
  sweepIdle(before: number): void {
    for (const s of this.map.values()) {
      if (s.lastActive > before) continue;
      if (s.remoteClosed && s.queue.length === 0) continue;
      this.c.limit('stream_idle_timeout');
      this.reset(s.id, ErrorCode.CANCEL);
    }
  }
}
