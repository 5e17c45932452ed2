// Writing a stream's answer: a unary answer as one pre-built write of HEADERS, DATA and trailers
// when the peer's windows allow it, otherwise headers, queued DATA (sent as flow control allows)
// and trailers; a trailers-only answer for errors; the call object a streaming route writes to.
import { frameMessage, PREFIX_BYTES } from '../grpc/framing.js';
import type { StreamCall } from '../grpc/routes.js';
import { errorStatus, GRPC_STATUS, grpcMessageText } from '../grpc/status.js';
import { Flag, FrameType, frame, writeFrameHeader } from './frames.js';
import { encodeHeaders } from './hpack-encoder.js';
import type { Output } from './output.js';
import type { H2Stream } from './stream.js';
import type { Streams } from './streams.js';

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

export class Answers {
  constructor(
    private readonly output: Output,
    private readonly streams: Streams,
  ) {}

  /** A unary answer: HEADERS, the message, OK trailers — one write when the windows allow. */
  respond(s: H2Stream, message: Uint8Array): void {
    if (s.localClosed) return;
    const out = this.output;
    const dataLen = PREFIX_BYTES + message.length;
    if (!s.headersSent && s.queue.length === 0 && out.trySpend(s, dataLen)) {
      const h = RESPONSE_HEADERS.length;
      const t = OK_TRAILERS.length;
      const buf = Buffer.allocUnsafe(27 + h + dataLen + t);
      writeFrameHeader(buf, 0, h, FrameType.HEADERS, Flag.END_HEADERS, s.id);
      RESPONSE_HEADERS.copy(buf, 9);
      let at = 9 + h;
      writeFrameHeader(buf, at, dataLen, FrameType.DATA, 0, s.id);
      buf[at + 9] = 0;
      buf.writeUInt32BE(message.length, at + 10);
      buf.set(message, at + 14);
      at += 9 + dataLen;
      writeFrameHeader(buf, at, t, FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, s.id);
      OK_TRAILERS.copy(buf, at + 9);
      s.headersSent = s.localClosed = true;
      out.push(buf, 3);
      return this.streams.maybeClose(s);
    }
    this.writeMessage(s, message);
    this.endStream(s, GRPC_STATUS.OK, '');
  }

  private writeMessage(s: H2Stream, message: Uint8Array): void {
    if (s.localClosed) return;
    this.sendHeaders(s);
    s.queue.push({ kind: 'data', bytes: frameMessage(message) });
    this.output.pump(s);
  }

  private endStream(s: H2Stream, status: number, message: string): void {
    if (s.localClosed) return;
    if (!s.headersSent && s.queue.length === 0) return this.trailersOnly(s, status, message);
    s.queue.push({ kind: 'trailers', block: trailersFor(status, message) });
    this.output.pump(s);
  }

  private sendHeaders(s: H2Stream): void {
    if (s.headersSent) return;
    s.headersSent = true;
    this.output.push(frame(FrameType.HEADERS, Flag.END_HEADERS, s.id, RESPONSE_HEADERS), 1);
  }

  trailersOnly(s: H2Stream, status: number, message: string): void {
    const block = encodeHeaders([
      [':status', '200'],
      ['content-type', 'application/grpc'],
      ['grpc-status', String(status)],
      ['grpc-message', grpcMessageText(message)],
    ]);
    this.headersOnly(s, block);
  }

  headersOnly(s: H2Stream, block: Buffer): void {
    if (s.localClosed) return;
    s.headersSent = s.localClosed = true;
    this.output.push(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, s.id, block), 1);
    // The peer may still be sending a body we will not read: tell it to stop.
    if (!s.remoteClosed) {
      s.remoteClosed = true;
      s.abandoned = true;
    }
    this.streams.maybeClose(s);
  }

  sendError(s: H2Stream, err: unknown): void {
    this.endStream(s, ...errorStatus(err));
  }

  streamCall(s: H2Stream): StreamCall {
    return {
      write: (message) => this.writeMessage(s, message),
      end: (status = GRPC_STATUS.OK, message = '') => this.endStream(s, status, message),
      onClose: (listener) => {
        if (this.streams.map.has(s.id)) (s.onClose ??= []).push(listener);
        else listener();
      },
    };
  }
}
