// One HTTP/2 stream's state: where its request is (headers, body, end), where our answer is
// (headers sent, queued output, flow-control credit), and when it last made progress.
import type { Route } from '../grpc/routes.js';

export type Outgoing = { kind: 'data'; bytes: Buffer } | { kind: 'trailers'; block: Buffer };

export class H2Stream {
  /** We have sent END_STREAM or RST_STREAM. */
  localClosed = false;
  /** We stopped reading the request (too large): RST_STREAM(NO_ERROR) follows our answer. */
  abandoned = false;
  headersSent = false;
  /** The method's route until the request is dispatched (once). */
  route: Route | undefined;
  /** DATA octets received with padding (against our stream window) and without (the body). */
  received = 0;
  dataBytes = 0;
  dataFrames = 0;
  /** The body: a view of the read when it came in one frame, else our own growing copy. */
  body: Buffer | undefined;
  bodyLength = 0;
  /** Bytes of `body` this stream holds against the budgets (0 for a view). */
  bodyHeld = 0;
  /** Over the message limit or the connection's buffer: answered without its body. */
  tooLarge = false;
  /** Our send window is the peer's SETTINGS_INITIAL_WINDOW_SIZE plus this (updates − sent). */
  credit = 0;
  queue: Outgoing[] = [];
  onClose: (() => void)[] | undefined;

  constructor(
    readonly id: number,
    /** The peer has sent END_STREAM (or we stopped listening to it). */
    public remoteClosed: boolean,
    readonly encoding: string | undefined,
    /** -1 when the request has no content-length. */
    readonly contentLength: number,
    /** Housekeeping tick of the last progress either way (the idle timeout). */
    public lastActive: number,
  ) {}
}
