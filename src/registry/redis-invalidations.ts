// Cache invalidation for the Redis store: a subscriber connection on the invalidation channel and
// the version counter that tells when a message was lost. Pub/sub is at-most-once, so every doubt
// (a version gap, a counter that went backwards, a resubscription) flushes the whole cache.
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import {
  closeClients,
  connect,
  type Client,
  type RedisConnectionOptions,
} from './redis-connection.js';
import type { Invalidation } from './registry.js';

export type InvalidationListener = (keys: Invalidation) => void;

export class RedisInvalidations {
  private readonly sub: Client;
  private readonly listeners: InvalidationListener[] = [];
  private lastVersion = -1;
  private subscribed = false;
  private readonly pollTimer: NodeJS.Timeout;
  private closed = false;

  /**
   * @param readVersion reads the version counter on the check connection, so that a failed poll
   *   also marks the store as failing.
   */
  constructor(
    opts: RedisConnectionOptions,
    private readonly channel: string,
    private readonly readVersion: () => Promise<string | null>,
    versionPollMs: number,
    private readonly logger?: Logger,
    private readonly metrics?: Metrics,
  ) {
    this.sub = connect(opts, { enableOfflineQueue: true, maxRetriesPerRequest: null });
    this.sub.on('error', () => undefined);
    this.setupSubscription();
    this.pollTimer = setInterval(() => void this.pollVersion(), versionPollMs);
    this.pollTimer.unref();
  }

  onInvalidate(listener: InvalidationListener): void {
    this.listeners.push(listener);
  }

  emit(keys: Invalidation): void {
    for (const l of this.listeners) l(keys);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.pollTimer);
    await closeClients([this.sub]);
  }

  private setupSubscription(): void {
    this.sub.on('ready', () => {
      void (async () => {
        try {
          await this.sub.subscribe(this.channel);
          // Messages sent while we were not subscribed are lost: start from an empty cache.
          if (this.subscribed || this.lastVersion >= 0) {
            this.metrics?.invalidations.inc({ kind: 'reconnect' });
            this.emit('all');
          }
          this.subscribed = true;
          this.metrics?.invalidationChannelUp.set(1);
        } catch (err) {
          this.logger?.warn({ err: String(err) }, 'invalidation subscribe failed');
        }
      })();
    });
    // Messages may be lost from now on: nothing cached may be trusted without a re-read. Entries
    // are kept (not flushed) so that, if Redis itself is down, the bounded-staleness outage
    // policy can still serve them; a full flush follows when the subscription is back.
    const down = () => {
      if (this.subscribed) {
        this.metrics?.invalidationChannelUp.set(0);
        this.emit('revalidate');
      }
      this.subscribed = false;
    };
    this.sub.on('close', down);
    this.sub.on('end', down);
    this.sub.on('message', (_channel: string, message: string) => this.onMessage(message));
  }

  private onMessage(message: string): void {
    try {
      const m = JSON.parse(message) as { v: number; keys: string[] | 'all' };
      // Redis publishes in version order on one connection: a jump means a lost message, and
      // a later message must not hide it.
      if (this.lastVersion >= 0 && m.v > this.lastVersion + 1) {
        this.metrics?.invalidations.inc({ kind: 'version_gap' });
        this.emit('all');
      }
      this.noteVersion(m.v);
      this.metrics?.invalidations.inc({ kind: m.keys === 'all' ? 'flush' : 'keys' });
      this.emit(m.keys);
    } catch {
      // An unreadable message still means something changed: forget everything.
      this.emit('all');
    }
  }

  private noteVersion(v: number): void {
    if (Number.isFinite(v) && v > this.lastVersion) this.lastVersion = v;
  }

  // A version ahead of every message seen means a message was lost (pub/sub is at-most-once).
  // Re-check once after a short pause so a message still in flight is not mistaken for a loss.
  private async pollVersion(): Promise<void> {
    if (this.closed) return;
    try {
      const v = Number((await this.readVersion()) ?? '0');
      if (this.lastVersion < 0) {
        this.lastVersion = v;
        return;
      }
      if (v < this.lastVersion) {
        // The counter went backwards: Redis restarted without its data, was flushed, or failed
        // over to a replica that had not seen the latest writes. Nothing cached can be trusted.
        this.lastVersion = v;
        this.metrics?.invalidations.inc({ kind: 'version_gap' });
        this.emit('all');
        return;
      }
      if (v === this.lastVersion) return;
      await new Promise((r) => setTimeout(r, 100));
      if (v > this.lastVersion) {
        this.lastVersion = v;
        this.metrics?.invalidations.inc({ kind: 'version_gap' });
        this.emit('all');
      }
    } catch {
      // counted by the store's read(); the next poll tries again
    }
  }
}
