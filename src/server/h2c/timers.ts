// A connection's clocks: one housekeeping tick for the handshake, an unfinished header block and
// idle streams; keepalive pings that find half-open peers; a maximum age (jittered) after which
// the connection drains so Envoy rebalances onto new replicas; the drain's PING.
import { calm } from './flood-guard.js';
import { ConnectionError, ErrorCode, FrameType, frame } from './frames.js';
import { HANDSHAKE_TIMEOUT_MS, HEADER_BLOCK_TIMEOUT_MS, type H2cOptions } from './limits.js';
import type { Connection } from './connection.js';

/** The PING payload of a graceful close (keepalive pings carry zeros). */
const DRAIN_PING = Buffer.from('drain\0\0\0', 'latin1');
const KEEPALIVE_PING = Buffer.alloc(8);
/** Node fires a longer timer at once (with a warning); a month of connection age is as good as never. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class Timers {
  private readonly all: NodeJS.Timeout[] = [];
  private pingTimeout: NodeJS.Timeout | undefined;
  private readonly opened = performance.now();
  private readonly tickMs: number;
  private readonly idleTicks: number;
  private readonly headerTicks: number;

  constructor(
    private readonly c: Connection,
    private readonly o: H2cOptions,
  ) {
    this.tickMs = Math.max(10, Math.min(1000, Math.floor(o.streamIdleTimeoutMs / 4)));
    this.idleTicks = Math.ceil(o.streamIdleTimeoutMs / this.tickMs);
    this.headerTicks = Math.ceil((o.headerBlockTimeoutMs ?? HEADER_BLOCK_TIMEOUT_MS) / this.tickMs);
    this.every(this.tickMs, () => this.housekeeping());
    this.every(o.keepaliveMs, () => this.keepalive());
    this.after(o.maxConnectionAgeMs * (1 + Math.random() * 0.1), () => {
      c.drain();
      this.after(o.maxConnectionAgeGraceMs, () => c.destroy());
    });
  }

  private every(ms: number, f: () => void): void {
    const t = setInterval(f, Math.min(ms, MAX_TIMER_MS));
    t.unref();
    this.all.push(t);
  }

  private after(ms: number, f: () => void): void {
    const t = setTimeout(f, Math.min(ms, MAX_TIMER_MS));
    t.unref();
    this.all.push(t);
  }

  private housekeeping(): void {
    const c = this.c;
    c.tick++;
    try {
      const handshake = this.o.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
      const late = performance.now() - this.opened > handshake;
      if (late && (!c.prefaceSeen || !c.control.settingsSeen))
        throw calm('preface_timeout', 'no connection preface');
      if (late && !c.control.settingsAcked)
        throw new ConnectionError(
          ErrorCode.SETTINGS_TIMEOUT,
          'SETTINGS not acknowledged',
          'settings_timeout',
        );
      const since = c.blocks.pendingSince;
      if (since !== undefined && c.tick - since >= this.headerTicks)
        throw calm('header_timeout', 'header block not finished');
      c.streams.sweepIdle(c.tick - this.idleTicks);
    } catch (err) {
      return c.fail(err);
    }
    c.output.flush();
  }

  private keepalive(): void {
    if (this.pingTimeout !== undefined) return;
    this.pingTimeout = setTimeout(() => this.c.destroy(), this.o.keepaliveTimeoutMs);
    this.pingTimeout.unref();
    this.c.output.control(frame(FrameType.PING, 0, 0, KEEPALIVE_PING));
  }

  /** The drain's PING: its ACK (or a second) sends the final GOAWAY. */
  drainPing(): void {
    this.c.output.control(frame(FrameType.PING, 0, 0, DRAIN_PING));
    this.after(1000, () => this.c.goAway(ErrorCode.NO_ERROR));
  }

  pong(payload: Buffer): void {
    clearTimeout(this.pingTimeout);
    this.pingTimeout = undefined;
    if (this.c.draining && payload.equals(DRAIN_PING)) this.c.goAway(ErrorCode.NO_ERROR);
  }

  stop(): void {
    for (const t of this.all) clearTimeout(t);
    clearTimeout(this.pingTimeout);
  }
}
