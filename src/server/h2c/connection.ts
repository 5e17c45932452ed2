// One client connection: reads frames off the socket and hands each to the part that owns it
// (header blocks, request bodies, streams, flow control), answers the connection-level frames,
// keeps the timers (handshake, unfinished header block, idle streams, keepalive, maximum age),
// and ends the connection — with GOAWAY and the RFC 9113 error, or at once when the peer does
// not read — when a protocol rule or a limit is broken.
import type net from 'node:net';
import type { Routes } from '../grpc/routes.js';
import { ControlFrames } from './control-frames.js';
import { FloodGuard } from './flood-guard.js';
import { FrameReader } from './frame-reader.js';
import { ConnectionError, ErrorCode, MAX_WINDOW, errorCodeName, goawayFrame } from './frames.js';
import { HeaderBlocks } from './header-blocks.js';
import {
  CONNECTION_BUFFER_BYTES,
  type H2cOptions,
  type LimitName,
  type TransportEvents,
} from './limits.js';
import type { BudgetHolder, MemoryBudget } from './memory-budget.js';
import { Output } from './output.js';
import { RequestBodies } from './request-body.js';
import { readIntoSharedBuffer } from './shared-reads.js';
import type { H2Stream } from './stream.js';
import { Streams } from './streams.js';
import { Timers } from './timers.js';

export interface ConnectionHost {
  readonly routes: Routes;
  readonly opts: H2cOptions;
  readonly budget: MemoryBudget;
  readonly events: TransportEvents;
  gone(c: Connection): void;
}

/** Limits a peer that stopped reading breaks: nothing more can be written to it. */
const UNREADABLE = new Set(['outbound_frames', 'outbound_control_frames', 'output_buffer']);

export class Connection implements BudgetHolder {
  held = 0;
  /** Housekeeping ticks since the connection opened (stream idle stamps). */
  tick = 0;
  readonly guard: FloodGuard;
  readonly output: Output;
  readonly streams: Streams;
  readonly blocks: HeaderBlocks;
  readonly bodies: RequestBodies;
  readonly control: ControlFrames;
  readonly timers: Timers;
  readonly routes: Routes;
  readonly maxMessageBytes: number;
  readonly maxConcurrentStreams: number;
  readonly maxHeaderListSize: number;
  readonly peer: string;
  goneAway = false;
  draining = false;
  peerGoneAway = false;
  dead = false;
  /** A connection error is being sent: what the connection holds no longer counts. */
  private ending = false;
  private readonly reader = new FrameReader(this);
  private bodyBytes = 0;
  private limitLogged = false;
  private readonly sharedReads: boolean;
  private resolveFinished!: () => void;
  readonly finished = new Promise<void>((r) => (this.resolveFinished = r));

  constructor(
    readonly socket: net.Socket,
    private readonly host: ConnectionHost,
  ) {
    const o = host.opts;
    this.routes = host.routes;
    this.maxMessageBytes = o.maxMessageBytes;
    this.maxConcurrentStreams = o.maxConcurrentStreams;
    this.maxHeaderListSize = o.maxHeaderListSize;
    this.peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.guard = new FloodGuard(o.resetBurst, o.resetRate);
    this.output = new Output(socket, this);
    this.streams = new Streams(this);
    this.blocks = new HeaderBlocks(this);
    this.bodies = new RequestBodies(this);
    this.control = new ControlFrames(this);
    this.sharedReads =
      o.sharedReads !== false && readIntoSharedBuffer(socket, (bytes) => this.onData(bytes));
    if (!this.sharedReads) socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', () => undefined);
    socket.on('close', () => this.onSocketClose());
    this.control.greet(o.maxConcurrentStreams, o.maxHeaderListSize);
    this.timers = new Timers(this, o);
  }

  // ---- reading ---------------------------------------------------------------------------

  private onData(d: Buffer): void {
    if (this.dead) return;
    try {
      this.reader.read(d);
    } catch (err) {
      return this.fail(err);
    }
    if (this.dead) return;
    const update = this.bodies.windowUpdate();
    if (update !== undefined) this.output.control(update);
    this.output.flush();
  }

  onFrame(type: number, flags: number, id: number, payload: Buffer): void {
    this.control.onFrame(type, flags, id, payload);
  }

  notHttp2(): void {
    this.socket.destroy();
  }

  get prefaceSeen(): boolean {
    return this.reader.prefaceSeen;
  }

  /** Bytes that must outlive this read: a copy when reads share one buffer. */
  keep(b: Buffer): Buffer {
    return this.sharedReads ? Buffer.from(b) : b;
  }

  // ---- budgets and reports ------------------------------------------------------------------

  /** Output, header blocks, partial frames and open streams: all against the same budget. */
  hold(delta: number): boolean {
    return this.ending || this.host.budget.change(this, delta);
  }

  holdBody(delta: number): 'ok' | 'connection' | 'ended' {
    if (delta > 0 && this.bodyBytes + delta > CONNECTION_BUFFER_BYTES) return 'connection';
    this.bodyBytes += delta;
    return this.hold(delta) ? 'ok' : 'ended';
  }

  releaseBody(bytes: number): void {
    this.bodyBytes -= bytes;
    this.hold(-bytes);
  }

  limit(name: LimitName): void {
    this.host.events.limitExceeded(name, this.peer, !this.limitLogged);
    this.limitLogged = true;
  }

  streamError(code: number): void {
    this.host.events.errorSent(errorCodeName(code), 'stream');
  }

  streamSent(s: H2Stream): void {
    this.streams.sent(s);
  }

  // ---- ending ----------------------------------------------------------------------------------

  /** A connection error: GOAWAY with its code, then close (at once if the peer is not reading). */
  fail(err: unknown): void {
    if (this.dead || this.ending) return;
    this.ending = true;
    this.host.budget.release(this);
    const e =
      err instanceof ConnectionError ? err : new ConnectionError(ErrorCode.INTERNAL_ERROR, '');
    if (e.limit !== undefined) this.limit(e.limit as LimitName);
    this.host.events.errorSent(errorCodeName(e.code), 'connection');
    if (e.limit !== undefined && UNREADABLE.has(e.limit)) return this.destroy();
    this.goAway(e.code, e.message);
    this.abort();
  }

  overBudget(): void {
    if (this.dead || this.ending) return;
    this.fail(new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'memory budget', 'memory_budget'));
  }

  /**
   * A graceful close in two steps, so requests already on the wire are still served: GOAWAY with
   * the highest possible stream id and a PING; when the PING comes back (or after a second), the
   * final GOAWAY with the last stream we will answer.
   */
  drain(): void {
    if (this.dead || this.draining || this.goneAway) return;
    this.draining = true;
    this.output.control(goawayFrame(MAX_WINDOW, ErrorCode.NO_ERROR));
    this.timers.drainPing();
  }

  /** Closes an idle connection to make room for a new one (GOAWAY NO_ERROR: nothing was lost). */
  evict(): void {
    this.goAway(ErrorCode.NO_ERROR, 'idle connection closed for a new one');
  }

  goAway(code: number, debug = ''): void {
    if (this.dead) return;
    // A graceful GOAWAY may be followed by one with an error code; never two graceful ones.
    if (!this.goneAway || code !== ErrorCode.NO_ERROR) {
      this.goneAway = true;
      this.output.control(goawayFrame(this.streams.lastStreamId, code, debug));
    }
    this.idle();
  }

  destroy(): void {
    if (this.dead) return;
    this.socket.destroy();
    this.onSocketClose();
  }

  /** After a connection error: what is queued (the GOAWAY) goes out, then the socket closes. */
  private abort(): void {
    this.output.flush();
    // Nothing more it sends will be read: stop taking it off the network.
    this.socket.pause();
    this.endSocket();
    this.onSocketClose();
  }

  /** Ends our side; a peer that does not close its side (or read our FIN) is cut off soon after. */
  private endSocket(): void {
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private onSocketClose(): void {
    if (this.dead) return;
    this.dead = true;
    this.timers.stop();
    this.streams.closeAll();
    this.output.close();
    this.blocks.drop();
    this.reader.drop();
    this.host.budget.release(this);
    this.host.gone(this);
    this.resolveFinished();
  }

  /** After GOAWAY (ours or the peer's), the connection ends once its last stream is done. */
  idle(): void {
    if ((this.goneAway || this.peerGoneAway) && this.streams.size === 0 && !this.dead) {
      this.output.flush();
      this.endSocket();
      this.onSocketClose();
    }
  }
}
