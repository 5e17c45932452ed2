// Per-connection counters behind the inbound flood limits (limits.ts). Each check that trips
// throws a ConnectionError(ENHANCE_YOUR_CALM) naming its limit; the connection turns that into a
// GOAWAY, a metric and one log line.
import { ConnectionError, ErrorCode } from './frames.js';
import {
  HEADER_BYTES_BURST,
  HEADER_BYTES_FREE,
  HEADER_BYTES_PER_SECOND,
  MAX_CONSECUTIVE_EMPTY_FRAMES,
  MAX_PRIORITY_FRAMES_PER_STREAM,
  MAX_WINDOW_UPDATES_PER_DATA_FRAME,
  TokenBucket,
  type LimitName,
} from './limits.js';

export function calm(limit: LimitName, message: string): ConnectionError {
  return new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, message, limit);
}

export class FloodGuard {
  private emptyFrames = 0;
  private priorityFrames = 0;
  private windowUpdates = 0;
  private streamsOpened = 0;
  /** DATA frames we sent: what legitimately earns WINDOW_UPDATE frames from the peer. */
  dataFramesSent = 0;
  private readonly resets: TokenBucket;
  private readonly headerBytes = new TokenBucket(HEADER_BYTES_BURST, HEADER_BYTES_PER_SECOND);

  constructor(resetBurst: number, resetRate: number) {
    this.resets = new TokenBucket(resetBurst, resetRate);
  }

  /** A HEADERS, CONTINUATION or DATA frame carrying `size` octets (padding excluded). */
  contentFrame(size: number, endStream: boolean): void {
    if (size > 0 || endStream) this.emptyFrames = 0;
    else if (++this.emptyFrames > MAX_CONSECUTIVE_EMPTY_FRAMES)
      throw calm('empty_frames', 'too many consecutive empty frames');
  }

  streamOpened(): void {
    this.streamsOpened++;
  }

  priority(): void {
    if (++this.priorityFrames > MAX_PRIORITY_FRAMES_PER_STREAM * (1 + this.streamsOpened))
      throw calm('priority_frames', 'too many PRIORITY frames');
  }

  /**
   * `count` WINDOW_UPDATE frames, or the stream windows one change of INITIAL_WINDOW_SIZE made us
   * revisit: both only earn their keep by letting us send DATA.
   */
  windowUpdate(count = 1): void {
    this.windowUpdates += count;
    const allowed =
      5 + 2 * (this.streamsOpened + MAX_WINDOW_UPDATES_PER_DATA_FRAME * this.dataFramesSent);
    if (this.windowUpdates > allowed)
      throw calm('window_update_frames', 'too many WINDOW_UPDATE frames');
  }

  /** A stream reset by the peer before our answer, refused by us, or reset by us for an error. */
  streamReset(): void {
    if (!this.resets.take()) throw calm('stream_resets', 'too many streams reset or refused');
  }

  /** A decoded header block: its compressed size and its header-list size, up to `limit`. */
  headerBlock(compressed: number, decoded: number, limit: number): void {
    const cost = Math.max(compressed, Math.min(decoded, limit)) - HEADER_BYTES_FREE;
    if (cost > 0 && !this.headerBytes.take(cost))
      throw calm('header_bytes', 'too many header bytes');
  }
}
