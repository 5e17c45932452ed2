// Frame dispatch and the connection-level frames (RFC 9113 §6): SETTINGS, PING, GOAWAY,
// WINDOW_UPDATE, RST_STREAM and PRIORITY. None of them costs work in proportion to the number of
// open streams: only an INITIAL_WINDOW_SIZE that grows revisits streams, and only those waiting
// on their window (output.ts).
import { calm } from './flood-guard.js';
import {
  ConnectionError,
  ErrorCode,
  Flag,
  FrameType,
  MAX_FRAME,
  MAX_FRAME_LIMIT,
  MAX_WINDOW,
  SETTINGS_ACK,
  Setting,
  DEFAULT_WINDOW,
  frame,
  frame32,
  settingsFrame,
} from './frames.js';
import { HEADER_TABLE_SIZE } from './hpack-decoder.js';
import { CONNECTION_WINDOW } from './request-body.js';
import { MAX_SETTINGS_ENTRIES } from './limits.js';
import type { Connection } from './connection.js';

export class ControlFrames {
  /** The peer's first SETTINGS arrived, and its ACK of ours. */
  settingsSeen = false;
  settingsAcked = false;

  constructor(private readonly c: Connection) {}

  /**
   * Our side of the handshake: concurrency, a stream window that holds the largest message, the
   * header table and header-list sizes we enforce; then the connection window.
   */
  greet(maxConcurrentStreams: number, maxHeaderListSize: number): void {
    this.c.output.control(
      settingsFrame([
        [Setting.HEADER_TABLE_SIZE, HEADER_TABLE_SIZE],
        [Setting.MAX_CONCURRENT_STREAMS, Math.min(MAX_WINDOW, maxConcurrentStreams)],
        [Setting.INITIAL_WINDOW_SIZE, this.c.bodies.streamWindow],
        [Setting.MAX_FRAME_SIZE, MAX_FRAME],
        [Setting.MAX_HEADER_LIST_SIZE, maxHeaderListSize],
      ]),
    );
    this.c.output.control(frame32(FrameType.WINDOW_UPDATE, 0, CONNECTION_WINDOW - DEFAULT_WINDOW));
  }

  onFrame(type: number, flags: number, id: number, payload: Buffer): void {
    const c = this.c;
    if (!this.settingsSeen && type !== FrameType.SETTINGS)
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'first frame must be SETTINGS');
    if (c.blocks.pendingId !== 0 && type !== FrameType.CONTINUATION)
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'expected CONTINUATION');
    switch (type) {
      case FrameType.DATA:
        return c.bodies.onData(flags, id, payload);
      case FrameType.HEADERS:
        return c.blocks.onHeaders(flags, id, payload);
      case FrameType.CONTINUATION:
        return c.blocks.onContinuation(flags, id, payload);
      case FrameType.PRIORITY:
        return this.onPriority(id, payload);
      case FrameType.RST_STREAM:
        return this.onReset(id, payload);
      case FrameType.SETTINGS:
        return this.onSettings(flags, id, payload);
      case FrameType.PING:
        return this.onPing(flags, id, payload);
      case FrameType.GOAWAY:
        if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'GOAWAY on a stream');
        if (payload.length < 8)
          throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'GOAWAY size');
        c.peerGoneAway = true;
        return c.idle();
      case FrameType.WINDOW_UPDATE:
        return this.onWindowUpdate(id, payload);
      case FrameType.PUSH_PROMISE:
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PUSH_PROMISE from a client');
      default:
        return; // unknown frame types are ignored (RFC 9113 §4.1)
    }
  }

  private onSettings(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if ((flags & Flag.ACK) !== 0) {
      if (payload.length !== 0)
        throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      this.settingsAcked = true;
      return;
    }
    if (payload.length % 6 !== 0)
      throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS size');
    if (payload.length / 6 > MAX_SETTINGS_ENTRIES)
      throw calm('settings_entries', 'too many SETTINGS entries');
    this.settingsSeen = true;
    const out = this.c.output;
    let initialWindow = -1;
    for (let i = 0; i < payload.length; i += 6) {
      const key = payload.readUInt16BE(i);
      const value = payload.readUInt32BE(i + 2);
      if (key === Setting.ENABLE_PUSH && value > 1)
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'ENABLE_PUSH must be 0 or 1');
      if (key === Setting.INITIAL_WINDOW_SIZE) {
        if (value > MAX_WINDOW) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'window');
        initialWindow = value;
      }
      if (key === Setting.MAX_FRAME_SIZE) {
        if (value < MAX_FRAME || value > MAX_FRAME_LIMIT)
          throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'MAX_FRAME_SIZE');
        out.peerMaxFrame = value;
      }
      // HEADER_TABLE_SIZE bounds our encoder's dynamic table: every block we send starts with a
      // size update to 0 (hpack-encoder.ts), so any value the peer sets is honoured.
    }
    out.control(SETTINGS_ACK);
    if (initialWindow !== -1 && initialWindow !== out.peerInitialWindow)
      out.initialWindow(initialWindow, this.c.streams.map.values());
  }

  private onPing(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PING on a stream');
    if (payload.length !== 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'PING size');
    if ((flags & Flag.ACK) === 0)
      this.c.output.control(frame(FrameType.PING, Flag.ACK, 0, payload));
    else this.c.timers.pong(payload);
  }

  private onWindowUpdate(id: number, payload: Buffer): void {
    if (payload.length !== 4)
      throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE size');
    this.c.guard.windowUpdate();
    const inc = payload.readUInt32BE(0) & 0x7fffffff;
    const streams = this.c.streams;
    if (id === 0) {
      if (inc === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'zero window increment');
      return this.c.output.connectionWindow(inc);
    }
    const s = streams.map.get(id);
    if (s === undefined) {
      if (id > streams.lastStreamId)
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE on an idle stream');
      return; // a closed stream: allowed for a while (RFC 9113 §6.9)
    }
    if (inc === 0) return streams.reset(id, ErrorCode.PROTOCOL_ERROR);
    if (!this.c.output.streamWindow(s, inc)) streams.reset(id, ErrorCode.FLOW_CONTROL_ERROR);
  }

  private onReset(id: number, payload: Buffer): void {
    if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (payload.length !== 4)
      throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'RST_STREAM size');
    if (id > this.c.streams.lastStreamId)
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on an idle stream');
    this.c.streams.peerReset(id);
  }

  private onPriority(id: number, payload: Buffer): void {
    if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PRIORITY on stream 0');
    this.c.guard.priority();
    if (payload.length === 5) return; // priorities are ignored, as RFC 9113 §5.3 allows
    if (id > this.c.streams.lastStreamId)
      throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'PRIORITY size on an idle stream');
    this.c.streams.reset(id, ErrorCode.FRAME_SIZE_ERROR);
  }
}
