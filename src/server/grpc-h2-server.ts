// A minimal gRPC server on node:http2 for the two services agent-authz serves: unary calls and one
// server-streaming call (health Watch). grpc-js's per-call machinery (interceptors, metadata
// objects, call trackers) cost more than the whole authorization decision; speaking the gRPC wire
// protocol directly — a 5-byte length prefix per message, `grpc-status` in trailers — is most of
// SPEC §9's throughput budget. Unknown methods, malformed framing and oversized messages get gRPC
// errors only for non-Check routes: the Check route always answers a CheckResponse (see routes).
import http2 from 'node:http2';
import type { Server, Socket } from 'node:net';
import { gunzipSync, inflateSync } from 'node:zlib';

export const GRPC_STATUS = {
  OK: 0,
  NOT_FOUND: 5,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

/**
 * A unary method: the request message (undefined when framing was invalid) to the response. The
 * message may be a view that is reused once the route returns (the h2c transport's shared read
 * buffer), for stream routes too: a route decodes it before returning, or copies what it keeps.
 */
export interface UnaryRoute {
  readonly kind: 'unary';
  handle(message: Buffer | undefined): Promise<Uint8Array> | Uint8Array;
}

/** A server-streaming method: `open` writes messages until it ends the call. */
export interface StreamRoute {
  readonly kind: 'stream';
  open(message: Buffer | undefined, call: StreamCall): void;
}

export interface StreamCall {
  write(message: Uint8Array): void;
  end(status?: number, message?: string): void;
  onClose(listener: () => void): void;
}

export interface GrpcH2Options {
  readonly maxMessageBytes: number;
  readonly maxConcurrentStreams: number;
  readonly keepaliveMs: number;
  readonly keepaliveTimeoutMs: number;
  readonly maxConnectionAgeMs: number;
  readonly maxConnectionAgeGraceMs: number;
  /** h2c only: read into one buffer shared by all connections, where Node allows (default on). */
  readonly sharedReads?: boolean;
}

const RESPONSE_HEADERS = { ':status': 200, 'content-type': 'application/grpc' };
const OK_TRAILERS = { 'grpc-status': '0' };

export class GrpcH2Server {
  private readonly server: http2.Http2Server;
  private readonly sessions = new Set<http2.ServerHttp2Session>();

  constructor(
    private readonly routes: ReadonlyMap<string, UnaryRoute | StreamRoute>,
    private readonly opts: GrpcH2Options,
  ) {
    this.server = http2.createServer({
      settings: { maxConcurrentStreams: opts.maxConcurrentStreams },
      // Node's default (10 MiB) resets streams under bursts with ENHANCE_YOUR_CALM, which Envoy
      // would treat as an authorization error (failure_mode_allow territory).
      maxSessionMemory: 64,
    });
    this.server.on('stream', (stream, headers) =>
      this.onStream(stream as http2.ServerHttp2Stream, headers),
    );
    this.server.on('session', (session) => this.track(session));
    // Nagle's algorithm would hold a response's trailers back until the peer ACKs its headers
    // and data; with the peer's delayed ACK that is a 40 ms stall. Off, as gRPC servers do.
    this.server.on('connection', (socket: Socket) => socket.setNoDelay(true));
  }

  listen(host: string, port: number): Promise<number> {
    return listenOn(this.server, host, port);
  }

  /** Stops accepting connections, lets in-flight calls finish (GOAWAY), destroys what is left at the deadline. */
  async close(graceMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sessions) s.close();
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
    await Promise.race([closed, deadline]);
    for (const s of this.sessions) s.destroy();
    await closed;
  }

  private track(session: http2.ServerHttp2Session): void {
    this.sessions.add(session);
    session.on('error', () => undefined);
    // Keepalive pings find half-open Envoy connections; a maximum age lets Envoy rebalance
    // connections after a scale-out.
    const ping = setInterval(() => {
      const timeout = setTimeout(() => session.destroy(), this.opts.keepaliveTimeoutMs);
      timeout.unref();
      if (!session.ping(() => clearTimeout(timeout))) clearTimeout(timeout);
    }, this.opts.keepaliveMs);
    ping.unref();
    const jitter = 1 + Math.random() * 0.1;
    const age = setTimeout(() => {
      session.close();
      setTimeout(() => session.destroy(), this.opts.maxConnectionAgeGraceMs).unref();
    }, this.opts.maxConnectionAgeMs * jitter);
    age.unref();
    session.once('close', () => {
      clearInterval(ping);
      clearTimeout(age);
      this.sessions.delete(session);
    });
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on('error', () => undefined);
    const contentType = headers['content-type'];
    if (
      headers[':method'] !== 'POST' ||
      contentType === undefined ||
      !contentType.startsWith('application/grpc')
    ) {
      stream.respond({ ':status': headers[':method'] === 'POST' ? 415 : 405 }, { endStream: true });
      return;
    }
    const route = this.routes.get(headers[':path'] ?? '');
    if (route === undefined) {
      trailersOnly(stream, GRPC_STATUS.UNIMPLEMENTED, 'unknown method');
      return;
    }
    const encoding = headers['grpc-encoding'];
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > this.opts.maxMessageBytes + 5) tooLarge = true;
      if (!tooLarge) chunks.push(chunk);
    });
    stream.on('end', () => {
      const message = tooLarge
        ? undefined
        : unframe(chunks, size, encoding, this.opts.maxMessageBytes);
      if (route.kind === 'unary') this.unary(stream, route, message);
      else route.open(message, streamCall(stream));
    });
  }

  private unary(
    stream: http2.ServerHttp2Stream,
    route: UnaryRoute,
    message: Buffer | undefined,
  ): void {
    let result: Promise<Uint8Array> | Uint8Array;
    try {
      result = route.handle(message);
    } catch (err) {
      sendError(stream, err);
      return;
    }
    if (result instanceof Uint8Array) sendMessage(stream, result);
    else
      result.then(
        (bytes) => sendMessage(stream, bytes),
        (err: unknown) => sendError(stream, err),
      );
  }
}

/** Listens on host:port and resolves with the bound port (port 0 picks a free one). */
export function listenOn(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr !== null ? addr.port : port);
    });
  });
}

/** One length-prefixed gRPC message, possibly compressed; anything else is invalid (undefined). */
export function unframe(
  chunks: Buffer[],
  size: number,
  encoding: string | string[] | undefined,
  max: number,
): Buffer | undefined {
  const buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
  if (buf.length < 5) return undefined;
  const length = buf.readUInt32BE(1);
  if (buf.length !== 5 + length) return undefined;
  const payload = buf.subarray(5);
  if (buf[0] === 0) return payload;
  if (buf[0] !== 1) return undefined;
  try {
    if (encoding === 'gzip') return gunzipSync(payload, { maxOutputLength: max });
    if (encoding === 'deflate') return inflateSync(payload, { maxOutputLength: max });
  } catch {
    return undefined;
  }
  return undefined;
}

/** One gRPC message on the wire: the 5-byte prefix (uncompressed, length) and the bytes. */
export function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

function sendMessage(stream: http2.ServerHttp2Stream, message: Uint8Array): void {
  if (stream.destroyed || stream.closed) return;
  stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
  stream.once('wantTrailers', () => stream.sendTrailers(OK_TRAILERS));
  stream.end(frame(message));
}

/** An error may carry its own gRPC status (e.g. NOT_FOUND); anything else is INTERNAL. */
export function errorStatus(err: unknown): [status: number, message: string] {
  const status = (err as { grpcStatus?: unknown } | null)?.grpcStatus;
  return typeof status === 'number'
    ? [status, (err as Error).message || 'error']
    : [GRPC_STATUS.INTERNAL, 'internal error'];
}

function sendError(stream: http2.ServerHttp2Stream, err: unknown): void {
  trailersOnly(stream, ...errorStatus(err));
}

function trailersOnly(stream: http2.ServerHttp2Stream, status: number, message: string): void {
  if (stream.destroyed || stream.closed) return;
  stream.respond(
    {
      ...RESPONSE_HEADERS,
      'grpc-status': String(status),
      'grpc-message': encodeURIComponent(message),
    },
    { endStream: true },
  );
}

function streamCall(stream: http2.ServerHttp2Stream): StreamCall {
  let started = false;
  let ended = false;
  const start = () => {
    if (started) return;
    started = true;
    stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
  };
  return {
    write(message) {
      if (ended || stream.destroyed) return;
      start();
      stream.write(frame(message));
    },
    end(status = GRPC_STATUS.OK, message = '') {
      if (ended || stream.destroyed || stream.closed) return;
      ended = true;
      if (!started) {
        trailersOnly(stream, status, message);
        return;
      }
      const trailers =
        status === GRPC_STATUS.OK
          ? OK_TRAILERS
          : { 'grpc-status': String(status), 'grpc-message': encodeURIComponent(message) };
      stream.once('wantTrailers', () => stream.sendTrailers(trailers));
      stream.end();
    },
    onClose(listener) {
      stream.once('close', listener);
    },
  };
}
