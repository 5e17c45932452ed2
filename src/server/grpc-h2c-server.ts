// gRPC over cleartext HTTP/2 (h2c, prior knowledge — what Envoy's gRPC client speaks to a
// `http2_protocol_options` cluster) on a plain TCP socket, for the same routes as GrpcH2Server.
// Why a transport of our own: with Envoy sending one check per TCP segment, node:http2 spent
// ~130 µs of CPU per call on this project's bench machine before any authorization work (a
// Duplex stream, events and header objects per call); reading frames straight off the socket and
// answering with one pre-built write costs ~50 µs. See README, Performance.
//
// What it implements (RFC 9113): the connection preface and SETTINGS exchange, HEADERS with
// CONTINUATION, padding and priority fields, DATA, RST_STREAM, PING, GOAWAY, WINDOW_UPDATE, flow
// control (the peer's windows for what we send; ours enforced on what it sends, with connection
// credit returned on arrival and buffered request bytes capped per connection instead), stream-id
// and state rules, limits on frame size, header block size and CONTINUATION count, write
// backpressure, keepalive pings, a maximum connection age and a two-step graceful GOAWAY. What
// it leaves out: TLS (use the node:http2 transport), server push (never used by gRPC), priorities
// (ignored, as allowed). Connection errors end the connection with GOAWAY and the RFC's error
// code; stream errors reset the stream.
import net from 'node:net';
import { HeaderDecoder, HpackError, encodeHeaders } from './hpack.js';
import {
  GRPC_STATUS,
  errorStatus,
  frame as frameMessage,
  listenOn,
  unframe,
  type GrpcH2Options,
  type StreamCall,
  type StreamRoute,
  type UnaryRoute,
} from './grpc-h2-server.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

const enum Frame {
  DATA = 0,
  HEADERS = 1,
  PRIORITY = 2,
  RST_STREAM = 3,
  SETTINGS = 4,
  PUSH_PROMISE = 5,
  PING = 6,
  GOAWAY = 7,
  WINDOW_UPDATE = 8,
  CONTINUATION = 9,
}
const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY_FLAG = 0x20;

/** Error codes (RFC 9113 §7). */
const enum Err {
  NO_ERROR = 0,
  PROTOCOL_ERROR = 1,
  INTERNAL_ERROR = 2,
  FLOW_CONTROL_ERROR = 3,
  STREAM_CLOSED = 5,
  FRAME_SIZE_ERROR = 6,
  REFUSED_STREAM = 7,
  CANCEL = 8,
  COMPRESSION_ERROR = 9,
  ENHANCE_YOUR_CALM = 11,
}

const DEFAULT_WINDOW = 65_535;
const MAX_WINDOW = 2 ** 31 - 1;
/** Our SETTINGS_MAX_FRAME_SIZE: the protocol default, so every peer starts with it. */
const MAX_FRAME = 16_384;
/** Header list and header block limits: far above what Envoy sends for a Check (~1 KB). */
const MAX_HEADER_BLOCK = 64 * 1024;
const MAX_HEADERS = 256;
/** Connection receive window; credit goes back to the peer as DATA arrives. */
const CONNECTION_WINDOW = 16 * 1024 * 1024;
/** Request bytes one connection may hold before its newest incomplete request is cut off. */
const BUFFER_BUDGET = 32 * 1024 * 1024;
/** CONTINUATION frames per header block (an empty-frame flood must not grow a list). */
const MAX_CONTINUATIONS = 128;
/** Unsent output above which we stop reading the peer; far above it the peer is dropped. */
const WRITE_HIGH = 1024 * 1024;
const WRITE_LIMIT = 16 * 1024 * 1024;

class ConnectionError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const EMPTY = Buffer.alloc(0);
/** The PING payload of a graceful close (keepalive pings carry zeros). */
const DRAIN_PING = Buffer.from('drain\0\0\0', 'latin1');

const RESPONSE_HEADERS = encodeHeaders([
  [':status', '200'],
  ['content-type', 'application/grpc'],
]);
const OK_TRAILERS = encodeHeaders([['grpc-status', '0']]);

function trailersFor(status: number, message: string): Buffer {
  return status === GRPC_STATUS.OK && message === ''
    ? OK_TRAILERS
    : encodeHeaders([
        ['grpc-status', String(status)],
        ['grpc-message', grpcMessageText(message)],
      ]);
}

/** grpc-message is percent-encoded; a lone surrogate would make encodeURIComponent throw. */
function grpcMessageText(message: string): string {
  return encodeURIComponent(message.toWellFormed());
}

function frameHeader(
  out: Buffer,
  at: number,
  len: number,
  type: number,
  flags: number,
  id: number,
) {
  out[at] = len >>> 16;
  out[at + 1] = (len >>> 8) & 0xff;
  out[at + 2] = len & 0xff;
  out[at + 3] = type;
  out[at + 4] = flags;
  out.writeUInt32BE(id, at + 5);
}

function frame(type: number, flags: number, id: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(9 + payload.length);
  frameHeader(out, 0, payload.length, type, flags, id);
  out.set(payload, 9);
  return out;
}

function u32(...values: number[]): Buffer {
  const b = Buffer.allocUnsafe(values.length * 4);
  values.forEach((v, i) => b.writeUInt32BE(v >>> 0, i * 4));
  return b;
}

type Outgoing = { kind: 'data'; bytes: Buffer } | { kind: 'trailers'; block: Buffer };

interface H2Stream {
  readonly id: number;
  /** The peer has sent END_STREAM (or we stopped listening to it). */
  remoteClosed: boolean;
  /** We have sent END_STREAM or RST_STREAM. */
  localClosed: boolean;
  /** We stopped reading the request (too large): RST_STREAM(NO_ERROR) follows our answer. */
  abandoned: boolean;
  headersSent: boolean;
  route: UnaryRoute | StreamRoute | undefined;
  encoding: string | undefined;
  chunks: Buffer[];
  size: number;
  /** DATA bytes received on this stream (padding included): bounded by our stream window. */
  received: number;
  sendWindow: number;
  queue: Outgoing[];
  onClose: (() => void)[];
}

export class GrpcH2cServer {
  private readonly server: net.Server;
  private readonly connections = new Set<Connection>();
  private closing = false;

  constructor(
    private readonly routes: ReadonlyMap<string, UnaryRoute | StreamRoute>,
    private readonly opts: GrpcH2Options,
  ) {
    this.server = net.createServer({ noDelay: true }, (socket) => {
      if (this.closing) {
        socket.destroy();
        return;
      }
      const c = new Connection(socket, this.routes, this.opts, () => this.connections.delete(c));
      this.connections.add(c);
    });
  }

  listen(host: string, port: number): Promise<number> {
    return listenOn(this.server, host, port);
  }

  /** Stops accepting, sends GOAWAY, lets in-flight calls finish, destroys what is left at the deadline. */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.connections) c.drain();
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
    await Promise.race([Promise.all([...this.connections].map((c) => c.finished)), deadline]);
    for (const c of this.connections) c.destroy();
    await closed;
  }
}

/** The request header fields the transport reads; reused for every block on a connection. */
class RequestHeaders {
  method: string | undefined;
  path: string | undefined;
  contentType: string | undefined;
  encoding: string | undefined;
  reset(): void {
    this.method = this.path = this.contentType = this.encoding = undefined;
  }

  readonly visit = (name: string, value: string): void => {
    if (name === ':method') this.method = value;
    else if (name === ':path') this.path = value;
    else if (name === 'content-type') this.contentType = value;
    else if (name === 'grpc-encoding') this.encoding = value;
  };
}

class Connection {
  private buf: Buffer = Buffer.alloc(0);
  private prefaceSeen = false;
  private settingsSeen = false;
  private readonly decoder = new HeaderDecoder();
  /** What a request's header block says that we act on, filled as the block is decoded. */
  private readonly requestHeaders = new RequestHeaders();
  private readonly streams = new Map<number, H2Stream>();
  private lastStreamId = 0;
  private goneAway = false;
  private draining = false;
  private peerGoneAway = false;
  private dead = false;
  /** Peer's SETTINGS that shape what we send. */
  private peerInitialWindow = DEFAULT_WINDOW;
  private peerMaxFrame = MAX_FRAME;
  private sendWindow = DEFAULT_WINDOW;
  /** Received DATA bytes not yet returned with WINDOW_UPDATE, and what the peer may still send. */
  private released = 0;
  private recvWindow = CONNECTION_WINDOW;
  /** Request bytes buffered across this connection's incomplete requests. */
  private buffered = 0;
  /** Unary handlers still running, whether or not their stream is still open. */
  private working = 0;
  private readonly streamWindow: number;
  /** Reads land in one shared buffer (readIntoOwnBuffer) rather than a new one each. */
  private readonly sharedReads: boolean;
  /** A header block spread over HEADERS + CONTINUATION frames. */
  private pendingBlock: { id: number; flags: number; parts: Buffer[]; size: number } | undefined;
  private out: Buffer[] = [];
  private flushScheduled = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private pingTimer: NodeJS.Timeout | undefined;
  private resolveFinished!: () => void;
  readonly finished = new Promise<void>((r) => (this.resolveFinished = r));

  constructor(
    private readonly socket: net.Socket,
    private readonly routes: ReadonlyMap<string, UnaryRoute | StreamRoute>,
    private readonly opts: GrpcH2Options,
    private readonly onGone: () => void,
  ) {
    this.sharedReads =
      opts.sharedReads !== false && readIntoOwnBuffer(socket, (bytes) => this.onData(bytes));
    if (!this.sharedReads) socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('drain', () => socket.resume());
    socket.on('error', () => undefined);
    socket.on('close', () => this.onSocketClose());
    // Our SETTINGS: concurrency, a per-stream window that holds the largest message, the header
    // list limit; then the connection window raised to CONNECTION_WINDOW.
    this.streamWindow = Math.min(MAX_WINDOW, opts.maxMessageBytes + 5 + MAX_FRAME);
    const settings = Buffer.allocUnsafe(18);
    [
      [0x3, Math.min(MAX_WINDOW, opts.maxConcurrentStreams)],
      [0x4, this.streamWindow],
      [0x6, MAX_HEADER_BLOCK],
    ].forEach(([id, value], i) => {
      settings.writeUInt16BE(id!, i * 6);
      settings.writeUInt32BE(value!, i * 6 + 2);
    });
    this.send(frame(Frame.SETTINGS, 0, 0, settings));
    this.send(frame(Frame.WINDOW_UPDATE, 0, 0, u32(CONNECTION_WINDOW - DEFAULT_WINDOW)));
    this.startTimers();
  }

  private startTimers(): void {
    // Keepalive pings find half-open peers; a maximum age lets Envoy rebalance after a scale-out.
    const ping = setInterval(() => {
      if (this.pingTimer !== undefined) return;
      this.pingTimer = setTimeout(() => this.destroy(), this.opts.keepaliveTimeoutMs);
      this.pingTimer.unref();
      this.send(frame(Frame.PING, 0, 0, Buffer.alloc(8)));
    }, this.opts.keepaliveMs);
    const age = setTimeout(
      () => {
        this.drain();
        const t = setTimeout(() => this.destroy(), this.opts.maxConnectionAgeGraceMs);
        t.unref();
        this.timers.push(t);
      },
      this.opts.maxConnectionAgeMs * (1 + Math.random() * 0.1),
    );
    ping.unref();
    age.unref();
    this.timers.push(ping, age);
  }

  /**
   * A graceful close in two steps, so requests already on the wire are still served: GOAWAY with
   * the highest possible stream id and a PING; when the PING comes back (or after a second), the
   * final GOAWAY with the last stream we will answer.
   */
  drain(): void {
    if (this.dead || this.draining || this.goneAway) return;
    this.draining = true;
    this.send(frame(Frame.GOAWAY, 0, 0, u32(MAX_WINDOW, Err.NO_ERROR)));
    this.send(frame(Frame.PING, 0, 0, DRAIN_PING));
    const t = setTimeout(() => this.goAway(Err.NO_ERROR), 1000);
    t.unref();
    this.timers.push(t);
  }

  goAway(code: number, debug = ''): void {
    if (this.dead) return;
    // A graceful GOAWAY may be followed by one with an error code; never two graceful ones.
    if (!this.goneAway || code !== Err.NO_ERROR) {
      this.goneAway = true;
      const payload = Buffer.concat([u32(this.lastStreamId, code), Buffer.from(debug, 'latin1')]);
      this.send(frame(Frame.GOAWAY, 0, 0, payload));
    }
    this.maybeFinish();
  }

  destroy(): void {
    if (this.dead) return;
    this.socket.destroy();
    this.onSocketClose();
  }

  /** After a connection error: what is queued (the GOAWAY) goes out, then the socket closes. */
  private abort(): void {
    this.flush();
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
    for (const t of this.timers) clearTimeout(t);
    clearTimeout(this.pingTimer);
    for (const s of this.streams.values()) this.closeStream(s);
    this.onGone();
    this.resolveFinished();
  }

  /** After GOAWAY (ours or the peer's), the connection ends once its last stream is done. */
  private maybeFinish(): void {
    if ((this.goneAway || this.peerGoneAway) && this.streams.size === 0 && !this.dead) {
      this.flush();
      this.endSocket();
      this.onSocketClose();
    }
  }

  // ---- reading -------------------------------------------------------------------------------

  /** Bytes that must outlive this read: a copy when reads share one buffer. */
  private keep(b: Buffer): Buffer {
    return this.sharedReads ? Buffer.from(b) : b;
  }

  private onData(d: Buffer): void {
    if (this.dead) return;
    // With shared reads `d` is overwritten by the next read: what is kept past this call is
    // copied (keep()), the rest only looked at.
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    try {
      let at = 0;
      if (!this.prefaceSeen) {
        const n = Math.min(this.buf.length, PREFACE.length);
        if (!this.buf.subarray(0, n).equals(PREFACE.subarray(0, n))) {
          // Not HTTP/2 with prior knowledge (e.g. HTTP/1.1): nothing sensible to answer.
          this.socket.destroy();
          return;
        }
        if (this.buf.length < PREFACE.length) {
          this.buf = this.keep(this.buf);
          return;
        }
        this.prefaceSeen = true;
        at = PREFACE.length;
      }
      while (this.buf.length - at >= 9) {
        const len = (this.buf[at]! << 16) | (this.buf[at + 1]! << 8) | this.buf[at + 2]!;
        if (len > MAX_FRAME) throw new ConnectionError(Err.FRAME_SIZE_ERROR, 'frame too large');
        if (this.buf.length - at < 9 + len) break;
        const type = this.buf[at + 3]!;
        const flags = this.buf[at + 4]!;
        const id = this.buf.readUInt32BE(at + 5) & 0x7fffffff;
        const payload = this.buf.subarray(at + 9, at + 9 + len);
        at += 9 + len;
        this.onFrame(type, flags, id, payload);
        if (this.dead) return;
      }
      // A leftover still inside this read is copied; one from a concatenation is ours already.
      const rest = this.buf.subarray(at);
      this.buf = at === this.buf.length ? EMPTY : this.buf === d ? this.keep(rest) : rest;
    } catch (err) {
      const code = err instanceof ConnectionError ? err.code : Err.INTERNAL_ERROR;
      this.goAway(code, err instanceof ConnectionError ? err.message : '');
      this.abort();
      return;
    }
    this.returnWindow();
    this.flush();
  }

  private onFrame(type: number, flags: number, id: number, payload: Buffer): void {
    if (!this.settingsSeen && type !== Frame.SETTINGS)
      throw new ConnectionError(Err.PROTOCOL_ERROR, 'first frame must be SETTINGS');
    if (this.pendingBlock !== undefined && type !== Frame.CONTINUATION)
      throw new ConnectionError(Err.PROTOCOL_ERROR, 'expected CONTINUATION');
    switch (type) {
      case Frame.DATA:
        return this.onDataFrame(flags, id, payload);
      case Frame.HEADERS:
        return this.onHeaders(flags, id, payload);
      case Frame.CONTINUATION:
        return this.onContinuation(flags, id, payload);
      case Frame.PRIORITY:
        if (id === 0) throw new ConnectionError(Err.PROTOCOL_ERROR, 'PRIORITY on stream 0');
        if (payload.length !== 5) {
          if (id > this.lastStreamId)
            throw new ConnectionError(Err.FRAME_SIZE_ERROR, 'PRIORITY size on an idle stream');
          this.resetStream(id, Err.FRAME_SIZE_ERROR);
        }
        return;
      case Frame.RST_STREAM:
        return this.onReset(id, payload);
      case Frame.SETTINGS:
        return this.onSettings(flags, id, payload);
      case Frame.PING:
        if (id !== 0) throw new ConnectionError(Err.PROTOCOL_ERROR, 'PING on a stream');
        if (payload.length !== 8) throw new ConnectionError(Err.FRAME_SIZE_ERROR, 'PING size');
        if ((flags & ACK) === 0) this.send(frame(Frame.PING, ACK, 0, payload));
        else {
          clearTimeout(this.pingTimer);
          this.pingTimer = undefined;
          if (this.draining && payload.equals(DRAIN_PING)) this.goAway(Err.NO_ERROR);
        }
        return;
      case Frame.GOAWAY:
        if (id !== 0) throw new ConnectionError(Err.PROTOCOL_ERROR, 'GOAWAY on a stream');
        if (payload.length < 8) throw new ConnectionError(Err.FRAME_SIZE_ERROR, 'GOAWAY size');
        this.peerGoneAway = true;
        this.maybeFinish();
        return;
      case Frame.WINDOW_UPDATE:
        return this.onWindowUpdate(id, payload);
      case Frame.PUSH_PROMISE:
        throw new ConnectionError(Err.PROTOCOL_ERROR, 'PUSH_PROMISE from a client');
      default:
        return; // unknown frame types are ignored (RFC 9113 §4.1)
    }
  }

  private onSettings(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) throw new ConnectionError(Err.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if ((flags & ACK) !== 0) {
      if (payload.length !== 0) throw new ConnectionError(Err.FRAME_SIZE_ERROR, 'SETTINGS ack');
      return;
    }
    if (payload.length % 6 !== 0) throw new ConnectionError(Err.FRAME_SIZE_ERROR, 'SETTINGS size');
    this.settingsSeen = true;
    for (let i = 0; i < payload.length; i += 6) {
      const key = payload.readUInt16BE(i);
      const value = payload.readUInt32BE(i + 2);
      if (key === 0x2 && value > 1)
        throw new ConnectionError(Err.PROTOCOL_ERROR, 'ENABLE_PUSH must be 0 or 1');
      if (key === 0x4) {
        if (value > MAX_WINDOW) throw new ConnectionError(Err.FLOW_CONTROL_ERROR, 'window');
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const s of this.streams.values()) {
          s.sendWindow += delta;
          if (s.sendWindow > MAX_WINDOW)
            throw new ConnectionError(Err.FLOW_CONTROL_ERROR, 'stream window overflow');
        }
      }
      if (key === 0x5) {
        if (value < MAX_FRAME || value > 16_777_215)
          throw new ConnectionError(Err.PROTOCOL_ERROR, 'MAX_FRAME_SIZE');
        this.peerMaxFrame = value;
      }
      // HEADER_TABLE_SIZE bounds our encoder's dynamic table: every block we send starts with a
      // size update to 0 (see hpack.ts), so any value the peer sets is honoured.
    }
    this.send(frame(Frame.SETTINGS, ACK, 0, Buffer.alloc(0)));
    for (const s of this.streams.values()) this.pump(s);
  }

  private onWindowUpdate(id: number, payload: Buffer): void {
    if (payload.length !== 4) throw new ConnectionError(Err.FRAME_SIZE_ERROR, 'WINDOW_UPDATE');
    const inc = payload.readUInt32BE(0) & 0x7fffffff;
    if (id === 0) {
      if (inc === 0) throw new ConnectionError(Err.PROTOCOL_ERROR, 'zero window increment');
      this.sendWindow += inc;
      if (this.sendWindow > MAX_WINDOW)
        throw new ConnectionError(Err.FLOW_CONTROL_ERROR, 'connection window overflow');
      for (const s of this.streams.values()) this.pump(s);
      return;
    }
    const s = this.streams.get(id);
    if (s === undefined) {
      if (id > this.lastStreamId) throw new ConnectionError(Err.PROTOCOL_ERROR, 'idle stream');
      return;
    }
    if (inc === 0) return this.resetStream(id, Err.PROTOCOL_ERROR);
    s.sendWindow += inc;
    if (s.sendWindow > MAX_WINDOW) return this.resetStream(id, Err.FLOW_CONTROL_ERROR);
    this.pump(s);
  }

  private onReset(id: number, payload: Buffer): void {
    if (id === 0) throw new ConnectionError(Err.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (payload.length !== 4) throw new ConnectionError(Err.FRAME_SIZE_ERROR, 'RST_STREAM size');
    if (id > this.lastStreamId) throw new ConnectionError(Err.PROTOCOL_ERROR, 'idle stream');
    const s = this.streams.get(id);
    if (s !== undefined) {
      s.localClosed = true; // nothing more may be sent on it
      this.closeStream(s);
    }
  }

  private onHeaders(flags: number, id: number, payload: Buffer): void {
    if (id === 0 || id % 2 === 0)
      throw new ConnectionError(Err.PROTOCOL_ERROR, 'HEADERS on an invalid stream id');
    let body = payload;
    let pad = 0;
    if ((flags & PADDED) !== 0) {
      if (body.length < 1) throw new ConnectionError(Err.FRAME_SIZE_ERROR, 'padding');
      pad = body[0]!;
      body = body.subarray(1);
    }
    if ((flags & PRIORITY_FLAG) !== 0) {
      if (body.length < 5) throw new ConnectionError(Err.FRAME_SIZE_ERROR, 'priority');
      if ((body.readUInt32BE(0) & 0x7fffffff) === id)
        throw new ConnectionError(Err.PROTOCOL_ERROR, 'stream depends on itself');
      body = body.subarray(5);
    }
    if (pad > body.length) throw new ConnectionError(Err.PROTOCOL_ERROR, 'padding too long');
    body = body.subarray(0, body.length - pad);
    // A block that ends here is decoded now; one that goes on in CONTINUATION frames is kept.
    const whole = (flags & END_HEADERS) !== 0;
    this.pendingBlock = { id, flags, parts: [whole ? body : this.keep(body)], size: body.length };
    if (whole) this.onHeaderBlock();
  }

  private onContinuation(flags: number, id: number, payload: Buffer): void {
    const p = this.pendingBlock;
    if (p === undefined || p.id !== id)
      throw new ConnectionError(Err.PROTOCOL_ERROR, 'unexpected CONTINUATION');
    p.parts.push((flags & END_HEADERS) !== 0 ? payload : this.keep(payload));
    p.size += 9 + payload.length; // frame headers count: a flood of empty frames is bounded too
    if (p.size > MAX_HEADER_BLOCK || p.parts.length > MAX_CONTINUATIONS)
      throw new ConnectionError(Err.ENHANCE_YOUR_CALM, 'header block too large');
    if ((flags & END_HEADERS) !== 0) this.onHeaderBlock();
  }

  private onHeaderBlock(): void {
    const { id, flags, parts } = this.pendingBlock!;
    this.pendingBlock = undefined;
    const h = this.requestHeaders;
    h.reset();
    let fields: number;
    try {
      // Every block is decoded, even for streams we refuse: the dynamic table must stay in step.
      const block = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      fields = this.decoder.decodeEach(block, h.visit);
    } catch (err) {
      if (err instanceof HpackError) throw new ConnectionError(Err.COMPRESSION_ERROR, err.message);
      throw err;
    }
    const endStream = (flags & END_STREAM) !== 0;
    const existing = this.streams.get(id);
    if (existing !== undefined) {
      // Trailers: must end the stream; gRPC requests carry nothing we read in them.
      if (existing.abandoned) return; // we stopped reading it; our answer is on its way
      if (!endStream) return this.resetStream(id, Err.PROTOCOL_ERROR);
      if (existing.remoteClosed) return this.resetStream(id, Err.STREAM_CLOSED);
      existing.remoteClosed = true;
      this.onRequestEnd(existing);
      return;
    }
    // A stream we already closed (or reset): ignored, as RFC 9113 §5.1 allows after our reset.
    if (id <= this.lastStreamId) return;
    this.lastStreamId = id;
    if (this.goneAway) return this.resetStreamRaw(id, Err.REFUSED_STREAM);
    if (fields > MAX_HEADERS) return this.resetStreamRaw(id, Err.ENHANCE_YOUR_CALM);
    // Handlers still running count too: resetting streams must not start unbounded work.
    if (Math.max(this.streams.size, this.working) >= this.opts.maxConcurrentStreams)
      return this.resetStreamRaw(id, Err.REFUSED_STREAM);
    const { method, path, contentType, encoding } = h;
    const s: H2Stream = {
      id,
      remoteClosed: endStream,
      localClosed: false,
      abandoned: false,
      headersSent: false,
      route: undefined,
      encoding,
      chunks: [],
      size: 0,
      received: 0,
      sendWindow: this.peerInitialWindow,
      queue: [],
      onClose: [],
    };
    this.streams.set(id, s);
    if (
      method !== 'POST' ||
      contentType === undefined ||
      !contentType.startsWith('application/grpc')
    ) {
      this.respondHeadersOnly(s, encodeHeaders([[':status', method === 'POST' ? '415' : '405']]));
      return;
    }
    const route = this.routes.get(path ?? '');
    if (route === undefined) {
      this.trailersOnly(s, GRPC_STATUS.UNIMPLEMENTED, 'unknown method');
      return;
    }
    s.route = route;
    if (endStream) this.onRequestEnd(s);
  }

  private onDataFrame(flags: number, id: number, payload: Buffer): void {
    if (id === 0) throw new ConnectionError(Err.PROTOCOL_ERROR, 'DATA on stream 0');
    let body = payload;
    if ((flags & PADDED) !== 0) {
      if (body.length < 1) throw new ConnectionError(Err.FRAME_SIZE_ERROR, 'padding');
      const pad = body[0]!;
      if (pad > body.length - 1) throw new ConnectionError(Err.PROTOCOL_ERROR, 'padding too long');
      body = body.subarray(1, body.length - pad);
    }
    // Connection flow control: the peer may not send past the window we gave it; the credit goes
    // back as soon as the bytes are here (memory is bounded by BUFFER_BUDGET instead, so large
    // requests on several streams can never deadlock the connection).
    this.recvWindow -= payload.length;
    if (this.recvWindow < 0) throw new ConnectionError(Err.FLOW_CONTROL_ERROR, 'window exceeded');
    this.released += payload.length;
    const s = this.streams.get(id);
    if (s === undefined || s.remoteClosed) {
      if (id > this.lastStreamId)
        throw new ConnectionError(Err.PROTOCOL_ERROR, 'DATA on idle stream');
      if (s !== undefined && !s.abandoned) this.resetStream(id, Err.STREAM_CLOSED);
      return;
    }
    s.received += payload.length;
    if (s.received > this.streamWindow) return this.resetStream(id, Err.FLOW_CONTROL_ERROR);
    const limit = this.opts.maxMessageBytes + 5;
    if (s.route !== undefined && s.size <= limit) {
      s.size += body.length;
      if (s.size <= limit && this.buffered + body.length <= BUFFER_BUDGET) {
        // A request that ends in this frame with nothing before it is handed to its route as a
        // view of the read (routes decode before they return); earlier parts are copied.
        const last = (flags & END_STREAM) !== 0 && s.chunks.length === 0;
        s.chunks.push(last ? body : Buffer.from(body));
        this.buffered += body.length;
      } else {
        s.size = limit + 1; // too large, or over the connection's budget: answered below
        this.unbuffer(s);
      }
    }
    if ((flags & END_STREAM) !== 0) {
      s.remoteClosed = true;
      this.onRequestEnd(s);
    } else if (s.route !== undefined && s.size > limit) {
      // Answer now (the Check route answers even this); the rest of the upload is dropped and
      // RST_STREAM(NO_ERROR) after the answer tells the client to stop sending (RFC 9113 §8.1).
      s.remoteClosed = true;
      s.abandoned = true;
      this.onRequestEnd(s);
    }
  }

  private unbuffer(s: H2Stream): void {
    for (const c of s.chunks) this.buffered -= c.length;
    s.chunks = [];
  }

  /** The request is complete (or will not be read further): hand it to its route. */
  private onRequestEnd(s: H2Stream): void {
    const route = s.route;
    if (route === undefined) {
      this.maybeClose(s);
      return;
    }
    s.route = undefined; // dispatched once
    const message =
      s.size > this.opts.maxMessageBytes + 5
        ? undefined
        : unframe(s.chunks, s.size, s.encoding, this.opts.maxMessageBytes);
    this.unbuffer(s);
    if (route.kind === 'stream') {
      try {
        route.open(message, this.streamCall(s));
      } catch (err) {
        this.sendError(s, err);
      }
      return;
    }
    let result: Promise<Uint8Array> | Uint8Array;
    try {
      result = route.handle(message);
    } catch (err) {
      this.sendError(s, err);
      return;
    }
    if (result instanceof Uint8Array) this.respond(s, result);
    else {
      this.working++;
      result.then(
        (bytes) => {
          this.working--;
          this.respond(s, bytes);
        },
        (err: unknown) => {
          this.working--;
          this.sendError(s, err);
        },
      );
    }
  }

  // ---- writing -------------------------------------------------------------------------------

  private send(b: Buffer): void {
    this.out.push(b);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.out.length === 0 || this.dead) {
      this.out = [];
      return;
    }
    const chunk = this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out);
    this.out = [];
    this.socket.write(chunk);
    // Backpressure: a peer that does not read stops being read (its requests wait in the
    // kernel); one that keeps us holding far more than that is cut off.
    const pending = this.socket.writableLength;
    if (pending > WRITE_LIMIT) this.destroy();
    else if (pending > WRITE_HIGH) this.socket.pause();
  }

  private returnWindow(): void {
    if (this.released >= CONNECTION_WINDOW / 8) {
      this.send(frame(Frame.WINDOW_UPDATE, 0, 0, u32(this.released)));
      this.recvWindow += this.released;
      this.released = 0;
    }
  }

  /** A unary answer: HEADERS, the message, OK trailers — one buffer when the windows allow. */
  private respond(s: H2Stream, message: Uint8Array): void {
    if (s.localClosed || this.dead) return;
    const dataLen = 5 + message.length;
    if (
      !s.headersSent &&
      s.queue.length === 0 &&
      dataLen <= this.peerMaxFrame &&
      dataLen <= s.sendWindow &&
      dataLen <= this.sendWindow
    ) {
      const h = RESPONSE_HEADERS.length;
      const t = OK_TRAILERS.length;
      const out = Buffer.allocUnsafe(27 + h + dataLen + t);
      frameHeader(out, 0, h, Frame.HEADERS, END_HEADERS, s.id);
      RESPONSE_HEADERS.copy(out, 9);
      let at = 9 + h;
      frameHeader(out, at, dataLen, Frame.DATA, 0, s.id);
      out[at + 9] = 0;
      out.writeUInt32BE(message.length, at + 10);
      out.set(message, at + 14);
      at += 9 + dataLen;
      frameHeader(out, at, t, Frame.HEADERS, END_HEADERS | END_STREAM, s.id);
      OK_TRAILERS.copy(out, at + 9);
      s.sendWindow -= dataLen;
      this.sendWindow -= dataLen;
      s.headersSent = true;
      s.localClosed = true;
      this.send(out);
      this.maybeClose(s);
      return;
    }
    this.writeMessage(s, message);
    this.endStream(s, GRPC_STATUS.OK, '');
  }

  private writeMessage(s: H2Stream, message: Uint8Array): void {
    if (s.localClosed || this.dead) return;
    this.sendHeaders(s);
    s.queue.push({ kind: 'data', bytes: frameMessage(message) });
    this.pump(s);
  }

  private endStream(s: H2Stream, status: number, message: string): void {
    if (s.localClosed || this.dead) return;
    if (!s.headersSent && s.queue.length === 0) {
      this.trailersOnly(s, status, message);
      return;
    }
    s.queue.push({ kind: 'trailers', block: trailersFor(status, message) });
    this.pump(s);
  }

  private sendHeaders(s: H2Stream): void {
    if (s.headersSent) return;
    s.headersSent = true;
    this.send(frame(Frame.HEADERS, END_HEADERS, s.id, RESPONSE_HEADERS));
  }

  /** Sends what flow control allows of the stream's queue; the rest waits for WINDOW_UPDATE. */
  private pump(s: H2Stream): void {
    while (s.queue.length > 0 && !s.localClosed) {
      const next = s.queue[0]!;
      if (next.kind === 'trailers') {
        this.send(frame(Frame.HEADERS, END_HEADERS | END_STREAM, s.id, next.block));
        s.queue.shift();
        s.localClosed = true;
        this.maybeClose(s);
        return;
      }
      const n = Math.min(next.bytes.length, s.sendWindow, this.sendWindow, this.peerMaxFrame);
      if (n <= 0) return;
      this.send(frame(Frame.DATA, 0, s.id, next.bytes.subarray(0, n)));
      s.sendWindow -= n;
      this.sendWindow -= n;
      if (n === next.bytes.length) s.queue.shift();
      else next.bytes = next.bytes.subarray(n);
    }
  }

  private trailersOnly(s: H2Stream, status: number, message: string): void {
    const block = encodeHeaders([
      [':status', '200'],
      ['content-type', 'application/grpc'],
      ['grpc-status', String(status)],
      ['grpc-message', grpcMessageText(message)],
    ]);
    this.respondHeadersOnly(s, block);
  }

  private respondHeadersOnly(s: H2Stream, block: Buffer): void {
    if (s.localClosed || this.dead) return;
    s.headersSent = true;
    s.localClosed = true;
    this.send(frame(Frame.HEADERS, END_HEADERS | END_STREAM, s.id, block));
    // The peer may still be sending a body we will not read: tell it to stop.
    if (!s.remoteClosed) {
      this.send(frame(Frame.RST_STREAM, 0, s.id, u32(Err.NO_ERROR)));
      s.remoteClosed = true;
    }
    this.maybeClose(s);
  }

  /** An error may carry its own gRPC status (e.g. NOT_FOUND); anything else is INTERNAL. */
  private sendError(s: H2Stream, err: unknown): void {
    this.endStream(s, ...errorStatus(err));
  }

  private streamCall(s: H2Stream): StreamCall {
    return {
      write: (message) => this.writeMessage(s, message),
      end: (status = GRPC_STATUS.OK, message = '') => this.endStream(s, status, message),
      onClose: (listener) => {
        if (this.streams.has(s.id)) s.onClose.push(listener);
        else listener();
      },
    };
  }

  private resetStream(id: number, code: number): void {
    const s = this.streams.get(id);
    if (s !== undefined) {
      if (s.localClosed && s.remoteClosed) return;
      s.localClosed = true;
      s.remoteClosed = true;
      this.closeStream(s);
    }
    this.resetStreamRaw(id, code);
  }

  private resetStreamRaw(id: number, code: number): void {
    this.send(frame(Frame.RST_STREAM, 0, id, u32(code)));
  }

  private maybeClose(s: H2Stream): void {
    if (!s.localClosed || !s.remoteClosed) return;
    if (s.abandoned && this.streams.has(s.id)) this.resetStreamRaw(s.id, Err.NO_ERROR);
    this.closeStream(s);
  }

  private closeStream(s: H2Stream): void {
    if (!this.streams.delete(s.id)) return;
    this.unbuffer(s);
    s.queue = [];
    for (const l of s.onClose.splice(0)) l();
    this.maybeFinish();
  }
}

/** The read buffer's size: a read never takes more, larger frames arrive over several reads. */
const READ_BUFFER_BYTES = 64 * 1024;
let readBuffer: Buffer | undefined;

/**
 * Switches an accepted socket to Node's `onread` mode: reads land in one buffer — the same for
 * every connection — and `onRead` gets a view of it, instead of Node allocating a new ArrayBuffer
 * per read: one per check at Envoy's rates, each of which a young-generation collection then had
 * to sweep (about half of each scavenge's ArrayBuffer sweeping, the largest part of a scavenge
 * here). Sharing is safe because a read is handled to the end before the event loop does another
 * (the connection copies whatever it keeps), and it keeps the memory constant however many
 * connections there are. Node documents `onread` for sockets it creates
 * (`new net.Socket({ onread })`), not for those a server accepts; this sets the same two fields
 * that option sets, when this Node has them, and returns false otherwise (the caller then listens
 * to 'data'). pause()/resume() and 'end'/'close' behave as with 'data': Node's net.Socket handles
 * both modes.
 */
function readIntoOwnBuffer(socket: net.Socket, onRead: (bytes: Buffer) => void): boolean {
  const handle = (socket as unknown as { _handle?: { useUserBuffer?: (b: Uint8Array) => void } })
    ._handle;
  const fields = Object.getOwnPropertySymbols(socket);
  const kBuffer = fields.find((f) => f.description === 'kBuffer');
  const kBufferCb = fields.find((f) => f.description === 'kBufferCb');
  if (
    typeof handle?.useUserBuffer !== 'function' ||
    kBuffer === undefined ||
    kBufferCb === undefined
  )
    return false;
  const buf = (readBuffer ??= Buffer.allocUnsafe(READ_BUFFER_BYTES));
  const s = socket as unknown as Record<symbol, unknown>;
  s[kBuffer] = buf;
  s[kBufferCb] = (n: number) => {
    onRead(buf.subarray(0, n));
    return true;
  };
  handle.useUserBuffer(buf);
  return true;
}
