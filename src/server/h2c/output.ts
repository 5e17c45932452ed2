// What a connection writes: frames batched into one socket write per event-loop turn, the send
// side of flow control (the peer's windows, and the streams waiting on them), and the bounds on
// output a peer does not read — frames, control frames and bytes held, as Envoy bounds them.
import type net from 'node:net';
import { calm, type FloodGuard } from './flood-guard.js';
import {
  ConnectionError,
  DEFAULT_WINDOW,
  ErrorCode,
  Flag,
  FrameType,
  MAX_FRAME,
  MAX_WINDOW,
  frame,
} from './frames.js';
import {
  MAX_OUTBOUND_CONTROL_FRAMES,
  MAX_OUTBOUND_FRAMES,
  OUTPUT_LIMIT_BYTES,
  OUTPUT_PAUSE_BYTES,
} from './limits.js';
import type { H2Stream } from './stream.js';

export interface OutputOwner {
  readonly guard: FloodGuard;
  /** The housekeeping tick, stamped on streams that make progress. */
  readonly tick: number;
  /** Records unsent bytes against the memory budget; false when the connection was ended. */
  hold(delta: number): boolean;
  /** Ends the connection for a limit or an error found while writing. */
  fail(err: ConnectionError): void;
  /** A stream's last frame (trailers) went out. */
  streamSent(s: H2Stream): void;
}

export class Output {
  /** The peer's connection window, its SETTINGS_INITIAL_WINDOW_SIZE and MAX_FRAME_SIZE. */
  sendWindow = DEFAULT_WINDOW;
  peerInitialWindow = DEFAULT_WINDOW;
  peerMaxFrame = MAX_FRAME;
  private parts: Buffer[] = [];
  private frames = 0;
  private controls = 0;
  private scheduled = false;
  /** Written while the peer was not reading, since the socket last drained. */
  private backlogFrames = 0;
  private backlogControls = 0;
  private held = 0;
  private paused = false;
  /** The connection ended: nothing more is written or held. */
  private closed = false;
  /** An upper bound on any open stream's credit: SETTINGS only walks streams when it matters. */
  private maxCredit = 0;
  /** Streams with DATA queued: waiting on the connection window, or on their own. */
  private readonly waitingConnection = new Set<H2Stream>();
  private readonly waitingStream = new Set<H2Stream>();

  constructor(
    private readonly socket: net.Socket,
    private readonly owner: OutputOwner,
  ) {
    socket.on('drain', () => this.drained());
  }

  /** A control frame (SETTINGS/PING ACK, RST_STREAM, WINDOW_UPDATE, GOAWAY). */
  control(f: Buffer): void {
    this.controls++;
    this.push(f, 1);
  }

  push(bytes: Buffer, frames: number): void {
    if (this.closed) return;
    this.parts.push(bytes);
    this.frames += frames;
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.parts.length === 0) return;
    const chunk = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    const frames = this.frames;
    const controls = this.controls;
    this.parts = [];
    this.frames = this.controls = 0;
    if (this.closed || this.socket.destroyed) return;
    this.socket.write(chunk);
    const pending = this.socket.writableLength;
    if (pending === 0) return this.drained();
    this.backlogFrames += frames;
    this.backlogControls += controls;
    if (this.backlogControls > MAX_OUTBOUND_CONTROL_FRAMES)
      return this.owner.fail(calm('outbound_control_frames', 'peer is not reading'));
    if (this.backlogFrames > MAX_OUTBOUND_FRAMES)
      return this.owner.fail(calm('outbound_frames', 'peer is not reading'));
    if (pending > OUTPUT_LIMIT_BYTES)
      return this.owner.fail(calm('output_buffer', 'peer is not reading'));
    const delta = pending - this.held;
    this.held = pending;
    if (!this.owner.hold(delta)) return;
    // A peer that does not read stops being read: its requests wait in the kernel.
    if (pending > OUTPUT_PAUSE_BYTES && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  /** The connection ended: its held bytes were released with it; nothing is written after. */
  close(): void {
    this.closed = true;
    this.held = 0;
    this.parts = [];
    this.waitingConnection.clear();
    this.waitingStream.clear();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private drained(): void {
    this.backlogFrames = this.backlogControls = 0;
    if (this.held !== 0 && !this.closed) {
      this.owner.hold(-this.held);
      this.held = 0;
    }
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }

  windowOf(s: H2Stream): number {
    return this.peerInitialWindow + s.credit;
  }

  /** Whether `n` octets of DATA fit in one frame and both windows now; if so they are spent. */
  trySpend(s: H2Stream, n: number): boolean {
    if (n > this.peerMaxFrame || n > this.sendWindow || n > this.windowOf(s)) return false;
    this.spend(s, n);
    return true;
  }

  /**
   * `last`: the frame ends what was queued. Only a frame of at least 1 KiB, or the last piece,
   * earns the peer WINDOW_UPDATE allowance: windows opened a byte at a time buy nothing.
   */
  private spend(s: H2Stream, n: number, last = true): void {
    s.credit -= n;
    this.sendWindow -= n;
    if (last || n >= 1024) this.owner.guard.dataFramesSent++;
    s.lastActive = this.owner.tick;
  }

  /** Sends what flow control allows of the stream's queue; the rest waits for window. */
  pump(s: H2Stream): void {
    while (s.queue.length > 0 && !s.localClosed) {
      const next = s.queue[0]!;
      if (next.kind === 'trailers') {
        this.push(
          frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, s.id, next.block),
          1,
        );
        s.queue.shift();
        this.forget(s);
        this.owner.streamSent(s);
        return;
      }
      const window = this.windowOf(s);
      const n = Math.min(next.bytes.length, window, this.sendWindow, this.peerMaxFrame);
      if (n <= 0) {
        (window <= 0 ? this.waitingStream : this.waitingConnection).add(s);
        return;
      }
      this.push(frame(FrameType.DATA, 0, s.id, next.bytes.subarray(0, n)), 1);
      this.spend(s, n, n === next.bytes.length);
      if (n === next.bytes.length) s.queue.shift();
      else next.bytes = next.bytes.subarray(n);
    }
    this.forget(s);
  }

  forget(s: H2Stream): void {
    this.waitingConnection.delete(s);
    this.waitingStream.delete(s);
  }

  /** Connection WINDOW_UPDATE: only streams waiting on the connection window are revisited. */
  connectionWindow(increment: number): void {
    this.sendWindow += increment;
    if (this.sendWindow > MAX_WINDOW)
      throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'connection window overflow');
    // A stream pump() puts back is appended only when the window ran out, which ends the loop.
    for (const s of this.waitingConnection) {
      if (this.sendWindow <= 0) return;
      this.waitingConnection.delete(s);
      this.pump(s);
    }
  }

  /** A stream's WINDOW_UPDATE; false when its window would pass the maximum. */
  streamWindow(s: H2Stream, increment: number): boolean {
    s.credit += increment;
    if (this.windowOf(s) > MAX_WINDOW) return false;
    if (s.credit > this.maxCredit) this.maxCredit = s.credit;
    if (this.waitingStream.has(s) || this.waitingConnection.has(s)) {
      this.forget(s);
      this.pump(s);
    }
    return true;
  }

  /**
   * SETTINGS_INITIAL_WINDOW_SIZE changed: every stream's window moves with it (credit is kept
   * relative), so only streams waiting on their own window are revisited, and only when it grew;
   * the flood guard counts that work like WINDOW_UPDATE frames. A change that would push a
   * window past 2^31-1 is a connection error (RFC 9113 §6.9.2); the open streams are walked for
   * it only when the bound on their credit says it could.
   */
  initialWindow(value: number, open: Iterable<H2Stream>): void {
    if (value + this.maxCredit > MAX_WINDOW) {
      let max = 0;
      for (const s of open) if (s.credit > max) max = s.credit;
      this.owner.guard.windowUpdate();
      if (value + max > MAX_WINDOW)
        throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'stream window overflow');
      this.maxCredit = max;
    }
    const grew = value > this.peerInitialWindow;
    this.peerInitialWindow = value;
    if (!grew || this.waitingStream.size === 0) return;
    this.owner.guard.windowUpdate(this.waitingStream.size);
    for (const s of [...this.waitingStream]) {
      this.waitingStream.delete(s);
      this.pump(s);
    }
  }
}
