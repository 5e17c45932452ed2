// The in-process registry cache: a decorator over any RegistryStore. Bounded (LRU), TTL with
// jitter, short-lived negative entries, one store read per key however many concurrent misses,
// and bounded staleness: when the store is down a cached entry is served for at most
// `maxStaleMs` after it was last read, then the lookup fails (registry_unavailable).
import { LRUCache } from 'lru-cache';
import { hotCounter, type Metrics } from '../observability/metrics.js';
import type { Agent, ApiKey, Tenant } from './records.js';
import {
  RegistryUnavailableError,
  lookupKey,
  type AgentLookup,
  type MaybePromise,
  type RegistryReader,
  type RegistryStore,
} from './registry.js';

interface Entry {
  readonly value: Agent | ApiKey | Tenant | null;
  // Moved forward in place when a refresh finds the record unchanged (see load()).
  fetchedAt: number;
  freshUntil: number;
}

export interface CacheOptions {
  readonly maxEntries: number;
  readonly ttlMs: number;
  readonly negativeTtlMs: number;
  readonly maxStaleMs: number;
  readonly now?: () => number;
}

type CacheResult = 'hit' | 'negative_hit' | 'miss' | 'stale';

export class CachedRegistry implements RegistryReader {
  private readonly entries: LRUCache<string, Entry>;
  // "Not registered" answers live in their own, smaller LRU: anyone can mint lookups that miss,
  // and those must not evict the registered agents a Redis outage would still need.
  private readonly negatives: LRUCache<string, Entry>;
  private readonly pending = new Map<string, Promise<Entry>>();
  private readonly now: () => number;
  private lastSuccess = 0;
  private newestFetch = 0;
  private generation = 0;
  /** Entries read before this instant are not fresh, whatever their TTL says. */
  private revalidateBefore = 0;
  /** Per-result counters that count in plain numbers (hotCounter): one of them moves per lookup. */
  private readonly counted: Record<CacheResult, { inc(): void } | undefined>;

  constructor(
    private readonly store: RegistryStore,
    private readonly opts: CacheOptions,
    private readonly metrics?: Metrics,
  ) {
    this.now = opts.now ?? Date.now;
    const evicted =
      metrics === undefined ? undefined : hotCounter(metrics.cacheEvictions, { cause: 'capacity' });
    const child = (result: CacheResult) =>
      metrics === undefined ? undefined : hotCounter(metrics.cacheRequests, { result });
    this.counted = {
      hit: child('hit'),
      negative_hit: child('negative_hit'),
      miss: child('miss'),
      stale: child('stale'),
    };
    this.entries = new LRUCache<string, Entry>({
      max: opts.maxEntries,
      dispose: (_v, _k, reason) => {
        if (reason === 'evict') evicted?.inc();
      },
    });
    this.negatives = new LRUCache<string, Entry>({
      max: Math.max(100, Math.min(10_000, opts.maxEntries)),
      dispose: (_v, _k, reason) => {
        if (reason === 'evict') evicted?.inc();
      },
    });
    store.onInvalidate((keys) => this.invalidate(keys));
  }

  findAgent(lookup: AgentLookup): MaybePromise<Agent | undefined> {
    return this.get(lookupKey(lookup), () => this.store.findAgent(lookup)) as MaybePromise<
      Agent | undefined
    >;
  }

  getKey(keyId: string): MaybePromise<ApiKey | undefined> {
    return this.get(`key:${keyId}`, () => this.store.getKey(keyId)) as MaybePromise<
      ApiKey | undefined
    >;
  }

  getTenant(tenantId: string): MaybePromise<Tenant | undefined> {
    return this.get(`tenant:${tenantId}`, () => this.store.getTenant(tenantId)) as MaybePromise<
      Tenant | undefined
    >;
  }

  /**
   * Entries that may still be served. Once every entry is older than the staleness bound none of
   * them can answer (whatever the store says), so they are dropped: readiness treats an empty
   * cache as cold, and a cache of unservable entries must not keep a replica SERVING.
   */
  get size(): number {
    if (this.entries.size > 0 && this.now() - this.newestFetch > this.opts.maxStaleMs) {
      this.metrics?.cacheEvictions.inc({ cause: 'flush' }, this.entries.size);
      this.entries.clear();
      this.negatives.clear();
    }
    return this.entries.size;
  }

  /** Seconds since the store last answered (for the staleness gauge). */
  stalenessSeconds(): number {
    return this.lastSuccess === 0 ? 0 : (this.now() - this.lastSuccess) / 1000;
  }

  invalidate(keys: readonly string[] | 'all' | 'revalidate'): void {
    if (keys === 'revalidate') {
      this.revalidateBefore = this.now();
      this.generation++;
      this.pending.clear();
      return;
    }
    if (keys === 'all') {
      this.metrics?.cacheEvictions.inc({ cause: 'flush' }, this.entries.size);
      this.entries.clear();
      this.negatives.clear();
      // In-flight loads started before a flush must not repopulate the cache with old data.
      this.generation++;
      this.pending.clear();
      return;
    }
    for (const k of keys) {
      if (this.entries.delete(k) || this.negatives.delete(k))
        this.metrics?.cacheEvictions.inc({ cause: 'invalidation' });
      if (this.pending.delete(k)) this.generation++;
    }
  }

  /** A fresh entry synchronously; anything else through the store (getOrLoad). */
  private get(
    key: string,
    load: () => Promise<Agent | ApiKey | Tenant | undefined>,
  ): MaybePromise<Agent | ApiKey | Tenant | undefined> {
    const now = this.now();
    const entry = this.entries.get(key) ?? this.negatives.get(key);
    if (entry !== undefined && now < entry.freshUntil && entry.fetchedAt > this.revalidateBefore) {
      this.counted[entry.value === null ? 'negative_hit' : 'hit']?.inc();
      return entry.value ?? undefined;
    }
    return this.getOrLoad(key, load, entry, now);
  }

  private async getOrLoad(
    key: string,
    load: () => Promise<Agent | ApiKey | Tenant | undefined>,
    entry: Entry | undefined,
    now: number,
  ): Promise<Agent | ApiKey | Tenant | undefined> {
    this.counted.miss?.inc();
    try {
      const fresh = await this.load(key, load);
      return fresh.value ?? undefined;
    } catch (err) {
      // Serve what we had, but never beyond the staleness bound: that bound is how long a
      // revocation can go unseen while Redis is unreachable.
      if (entry !== undefined && now - entry.fetchedAt <= this.opts.maxStaleMs) {
        this.counted.stale?.inc();
        return entry.value ?? undefined;
      }
      throw err instanceof RegistryUnavailableError
        ? err
        : new RegistryUnavailableError(String(err));
    }
  }

  private load(
    key: string,
    load: () => Promise<Agent | ApiKey | Tenant | undefined>,
  ): Promise<Entry> {
    const inFlight = this.pending.get(key);
    if (inFlight !== undefined) return inFlight;
    const generation = this.generation;
    const p = load()
      .then((value) => {
        const fetchedAt = this.now();
        this.lastSuccess = fetchedAt;
        const ttl = value === undefined ? this.opts.negativeTtlMs : jitter(this.opts.ttlMs);
        // A fresh entry is served without asking the store, so its TTL may not outlive the
        // staleness bound either: otherwise cache_ttl > registry_max_stale would stretch it.
        const freshUntil = fetchedAt + Math.min(ttl, this.opts.maxStaleMs);
        // A refresh that finds the record unchanged keeps the cached object and only moves its
        // times: replacing it made every TTL expiry leave a record and an entry behind in the old
        // generation (long-lived, so promoted), which is what filled it between full collections
        // under steady load. The record just read dies young instead.
        const old = this.entries.peek(key);
        if (generation === this.generation && old !== undefined && sameRecord(old.value, value)) {
          old.fetchedAt = fetchedAt;
          old.freshUntil = freshUntil;
          this.entries.set(key, old);
          this.newestFetch = fetchedAt;
          return old;
        }
        const e: Entry = { value: value ?? null, fetchedAt, freshUntil };
        if (generation === this.generation) {
          if (e.value === null) {
            this.entries.delete(key);
            this.negatives.set(key, e);
          } else {
            this.negatives.delete(key);
            this.entries.set(key, e);
            this.newestFetch = fetchedAt;
          }
        }
        return e;
      })
      .finally(() => {
        if (this.pending.get(key) === p) this.pending.delete(key);
      });
    this.pending.set(key, p);
    return p;
  }
}

// Spread refreshes so that entries cached together do not all expire in the same millisecond.
function jitter(ttl: number): number {
  return Math.round(ttl * (0.9 + Math.random() * 0.1));
}

/**
 * Whether a re-read record equals the cached one: the same keys, each value identical or an
 * array of identical elements (registry records are flat; anything else counts as changed).
 */
export function sameRecord(
  a: Agent | ApiKey | Tenant | null,
  b: Agent | ApiKey | Tenant | undefined,
): boolean {
  if (a === null || b === undefined) return false;
  const x = a as Readonly<Record<string, unknown>>;
  const y = b as Readonly<Record<string, unknown>>;
  let keys = 0;
  for (const k in x) {
    keys++;
    if (!Object.hasOwn(y, k)) return false;
    const u = x[k];
    const v = y[k];
    if (u === v) continue;
    if (!Array.isArray(u) || !Array.isArray(v) || u.length !== v.length) return false;
    for (let i = 0; i < u.length; i++) if (u[i] !== v[i]) return false;
  }
  for (const k in y) if (Object.hasOwn(y, k)) keys--;
  return keys === 0;
}
