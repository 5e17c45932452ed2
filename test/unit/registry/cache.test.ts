// The registry cache over a fake store (counting reads, failing on demand) and an injected clock:
// single-flight, negative entries, invalidation, and the staleness bound that limits how long a
// revocation can go unseen while the store is down.
import { describe, expect, it } from 'vitest';
import { CachedRegistry, sameRecord, type CacheOptions } from '../../../src/registry/cache.js';
import type { Agent, ApiKey, RegistryData, Tenant } from '../../../src/registry/records.js';
import {
  RegistryUnavailableError,
  lookupKey,
  type AgentLookup,
  type RegistryStore,
  type Invalidation,
} from '../../../src/registry/registry.js';

const ALPHA: Agent = {
  agent_id: 'alpha',
  tenant: 'acme',
  agent_role: 'reader',
  status: 'approved',
};

class FakeStore implements RegistryStore {
  readonly kind = 'redis';
  reads = 0;
  down = false;
  agents = new Map<string, Agent>([['id:alpha', ALPHA]]);
  private release: (() => void) | undefined;
  private gate: Promise<void> | undefined;
  private readonly listeners: ((keys: Invalidation) => void)[] = [];

  /** Holds every read until release() — to make concurrent misses overlap. */
  hold(): () => void {
    this.gate = new Promise((r) => (this.release = r));
    return () => {
      this.gate = undefined;
      this.release?.();
    };
  }

  async findAgent(lookup: AgentLookup): Promise<Agent | undefined> {
    this.reads++;
    if (this.gate !== undefined) await this.gate;
    if (this.down) throw new RegistryUnavailableError('down');
    return this.agents.get(lookupKey(lookup));
  }
  async getKey(): Promise<ApiKey | undefined> {
    this.reads++;
    if (this.down) throw new Error('socket closed');
    return undefined;
  }
  async getTenant(): Promise<Tenant | undefined> {
    return undefined;
  }
  invalidate(keys: Invalidation): void {
    for (const l of this.listeners) l(keys);
  }
  onInvalidate(l: (keys: Invalidation) => void): void {
    this.listeners.push(l);
  }
  ready(): boolean {
    return !this.down;
  }
  async putAgent(): Promise<void> {}
  async deleteAgent(): Promise<boolean> {
    return false;
  }
  async putKey(): Promise<void> {}
  async deleteKey(): Promise<boolean> {
    return false;
  }
  async putTenant(): Promise<void> {}
  async deleteTenant(): Promise<boolean> {
    return false;
  }
  async listAgents(): Promise<Agent[]> {
    return [];
  }
  async listKeys(): Promise<ApiKey[]> {
    return [];
  }
  async listTenants(): Promise<Tenant[]> {
    return [];
  }
  async importData(_d: RegistryData): Promise<void> {}
  async close(): Promise<void> {}
}

const byId = (value: string): AgentLookup => ({ by: 'id', value });

function setup(over: Partial<CacheOptions> = {}) {
  const clock = { t: 1_000_000 };
  const store = new FakeStore();
  const cache = new CachedRegistry(store, {
    maxEntries: 100,
    ttlMs: 10_000,
    negativeTtlMs: 2_000,
    maxStaleMs: 30_000,
    now: () => clock.t,
    ...over,
  });
  return { clock, store, cache };
}

async function codeOf(p: unknown): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? 'thrown';
  }
}

describe('CachedRegistry single-flight', () => {
  it('1000 concurrent misses for one key make exactly one store read', async () => {
    const { store, cache } = setup();
    const release = store.hold();
    const all = Array.from({ length: 1000 }, () => cache.findAgent(byId('alpha')));
    release();
    const results = await Promise.all(all);
    expect(store.reads).toBe(1);
    expect(results.every((a) => a?.agent_id === 'alpha')).toBe(true);
    await cache.findAgent(byId('alpha'));
    expect(store.reads).toBe(1);
  });

  it('distinct keys are read once each', async () => {
    const { store, cache } = setup();
    const release = store.hold();
    const all = ['a', 'b', 'c'].flatMap((id) => [
      cache.findAgent(byId(id)),
      cache.findAgent(byId(id)),
    ]);
    release();
    await Promise.all(all);
    expect(store.reads).toBe(3);
  });

  it('a failed shared read fails every waiter and is not cached', async () => {
    const { store, cache } = setup();
    store.down = true;
    const release = store.hold();
    const all = Array.from({ length: 50 }, () => codeOf(cache.findAgent(byId('alpha'))));
    release();
    expect(new Set(await Promise.all(all))).toEqual(new Set(['registry_unavailable']));
    expect(store.reads).toBe(1);
    store.down = false;
    expect((await cache.findAgent(byId('alpha')))?.agent_id).toBe('alpha');
    expect(store.reads).toBe(2);
  });
});

describe('CachedRegistry negative entries', () => {
  it('an unknown agent is read once per negative TTL, then read again', async () => {
    const { store, cache, clock } = setup();
    expect(await cache.findAgent(byId('ghost'))).toBeUndefined();
    expect(await cache.findAgent(byId('ghost'))).toBeUndefined();
    expect(store.reads).toBe(1);
    store.agents.set('id:ghost', { ...ALPHA, agent_id: 'ghost' });
    clock.t += 2_001;
    expect((await cache.findAgent(byId('ghost')))?.agent_id).toBe('ghost');
    expect(store.reads).toBe(2);
  });

  it('an invalidation makes a newly created agent visible at once', async () => {
    const { store, cache } = setup();
    expect(await cache.findAgent(byId('new'))).toBeUndefined();
    store.agents.set('id:new', { ...ALPHA, agent_id: 'new' });
    store.invalidate(['id:new']);
    expect((await cache.findAgent(byId('new')))?.agent_id).toBe('new');
  });

  it('a flush during a read keeps the old answer out of the cache', async () => {
    const { store, cache } = setup();
    const release = store.hold();
    const inFlight = cache.findAgent(byId('alpha'));
    store.agents.set('id:alpha', { ...ALPHA, status: 'revoked' });
    store.invalidate('all');
    release();
    await inFlight;
    expect((await cache.findAgent(byId('alpha')))?.status).toBe('revoked');
  });
});

describe('CachedRegistry staleness bound', () => {
  it('serves a cached entry while the store is down, until max stale, then fails', async () => {
    const { store, cache, clock } = setup();
    await cache.findAgent(byId('alpha'));
    store.down = true;
    clock.t += 5_000; // fresh: no store read
    expect((await cache.findAgent(byId('alpha')))?.agent_id).toBe('alpha');
    expect(store.reads).toBe(1);
    clock.t += 20_000; // past TTL, within max stale: the read fails, the stale entry answers
    expect((await cache.findAgent(byId('alpha')))?.agent_id).toBe('alpha');
    expect(store.reads).toBe(2);
    clock.t += 5_001; // 30.001 s after the read: beyond the bound
    expect(await codeOf(cache.findAgent(byId('alpha')))).toBe('registry_unavailable');
  });

  it('a miss while the store is down fails with registry_unavailable, whatever the error', async () => {
    const { store, cache } = setup();
    store.down = true;
    expect(await codeOf(cache.findAgent(byId('alpha')))).toBe('registry_unavailable');
    expect(await codeOf(cache.getKey('k1'))).toBe('registry_unavailable');
  });

  it('a TTL longer than max stale is cut to max stale', async () => {
    const { store, cache, clock } = setup({ ttlMs: 120_000, maxStaleMs: 10_000 });
    await cache.findAgent(byId('alpha'));
    store.down = true;
    clock.t += 10_001;
    expect(await codeOf(cache.findAgent(byId('alpha')))).toBe('registry_unavailable');
  });

  it('a successful refresh restarts the bound', async () => {
    const { store, cache, clock } = setup();
    await cache.findAgent(byId('alpha'));
    clock.t += 25_000;
    await cache.findAgent(byId('alpha')); // expired: re-read while up
    store.down = true;
    clock.t += 25_000;
    expect((await cache.findAgent(byId('alpha')))?.agent_id).toBe('alpha');
  });

  it('reports itself cold once every entry is beyond the bound', async () => {
    const { cache, clock } = setup();
    expect(cache.size).toBe(0);
    await cache.findAgent(byId('alpha'));
    await cache.findAgent(byId('ghost'));
    // size counts servable registered entries; "not registered" answers live in their own LRU.
    expect(cache.size).toBe(1);
    clock.t += 30_000;
    expect(cache.size).toBe(1);
    clock.t += 1;
    expect(cache.size).toBe(0);
  });

  it('reports staleness since the store last answered', async () => {
    const { cache, clock } = setup();
    expect(cache.stalenessSeconds()).toBe(0);
    await cache.findAgent(byId('alpha'));
    clock.t += 4_000;
    expect(cache.stalenessSeconds()).toBe(4);
  });
});

describe('CachedRegistry after the invalidation channel is lost', () => {
  it('re-reads every entry before trusting it, but may still serve it within max stale if the store is down', async () => {
    const { store, cache, clock } = setup();
    await cache.findAgent(byId('alpha'));
    expect(store.reads).toBe(1);
    store.invalidate('revalidate');
    clock.t += 1;
    await cache.findAgent(byId('alpha'));
    expect(store.reads).toBe(2); // fresh by TTL, yet re-read
    await cache.findAgent(byId('alpha'));
    expect(store.reads).toBe(2); // the re-read entry is trusted again
    store.invalidate('revalidate');
    store.down = true;
    clock.t += 1;
    expect((await cache.findAgent(byId('alpha')))?.agent_id).toBe('alpha'); // stale, within bound
  });

  it('keeps "not registered" entries apart so a flood of unknown keys cannot evict agents', async () => {
    const { store, cache } = setup({ maxEntries: 100 });
    await cache.findAgent(byId('alpha'));
    for (let i = 0; i < 500; i++) await cache.findAgent(byId(`unknown-${i}`));
    const before = store.reads;
    await cache.findAgent(byId('alpha'));
    expect(store.reads).toBe(before); // still cached
  });
});

describe('refreshes', () => {
  it('keep the cached object when the re-read record is equal, and take a changed one', async () => {
    const { store, cache, clock } = setup();
    const roles = { ...ALPHA, permitted_roles: ['reader', 'writer'] };
    store.agents.set('id:alpha', roles);
    const first = await cache.findAgent(byId('alpha'));
    expect(first).toBe(roles);
    // Past the TTL the store hands back an equal record, as a new object (as Redis would).
    clock.t += 10_001;
    store.agents.set('id:alpha', { ...roles, permitted_roles: ['reader', 'writer'] });
    expect(await cache.findAgent(byId('alpha'))).toBe(first);
    expect(store.reads).toBe(2);
    // Fresh again: served without a read, still the same object.
    expect(cache.findAgent(byId('alpha'))).toBe(first);
    expect(store.reads).toBe(2);
    // A revocation is a changed record: it replaces the cached one at the next refresh.
    clock.t += 10_001;
    store.agents.set('id:alpha', { ...roles, status: 'revoked' });
    expect((await cache.findAgent(byId('alpha')))?.status).toBe('revoked');
  });

  it('sameRecord: equal only with the same keys and values (arrays element by element)', () => {
    const a: Agent = { ...ALPHA, permitted_roles: ['r1', 'r2'] };
    expect(sameRecord(a, { ...a, permitted_roles: ['r1', 'r2'] })).toBe(true);
    expect(sameRecord(a, { ...a, permitted_roles: ['r2', 'r1'] })).toBe(false);
    expect(sameRecord(a, { ...a, permitted_roles: ['r1'] })).toBe(false);
    expect(sameRecord(a, { ...a, status: 'suspended' })).toBe(false);
    expect(sameRecord(a, { ...a, display_name: 'x' })).toBe(false);
    const fewer: Agent = { ...a };
    delete (fewer as { permitted_roles?: string[] }).permitted_roles;
    expect(sameRecord(a, fewer)).toBe(false);
    expect(sameRecord(fewer, a)).toBe(false);
    expect(sameRecord(null, a)).toBe(false);
    expect(sameRecord(a, undefined)).toBe(false);
  });
});
