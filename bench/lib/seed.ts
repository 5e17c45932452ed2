// The bench's own redis-server and registry: the named fixtures go through the store's normal write
// path (the one the admin API uses); the 100 000 bulk agents are written with a pipeline in the
// same key layout, because 100 000 optimistic Lua writes one by one would dominate the run.
import { Redis } from 'ioredis';
import { spawnSync } from 'node:child_process';
import { TestRedis } from '../../test/helpers/redis.js';
import { LOAD_CPU } from './procs.js';
import { RedisKeys } from '../../src/registry/redis-keys.js';
import { RedisStore } from '../../src/registry/redis-store.js';
import { bulkAgent, type Fixtures } from '../fixtures.js';

export const PREFIX = 'agent-authz';

export interface Registry {
  readonly redis: TestRedis;
  readonly store: RedisStore;
  close(): Promise<void>;
}

export async function startRegistry(): Promise<Registry> {
  const redis = await TestRedis.start();
  // Redis shares the load generator's core, so the server's core measures agent-authz alone.
  if (redis.pid !== undefined && LOAD_CPU !== 'none')
    spawnSync('taskset', ['-a', '-cp', LOAD_CPU, String(redis.pid)], { stdio: 'ignore' });
  const store = new RedisStore({
    url: redis.url,
    commandTimeoutMs: 1000,
    prefix: PREFIX,
    versionPollMs: 60_000,
  });
  await store.waitReady(5000);
  return {
    redis,
    store,
    close: async () => {
      await store.close();
      await redis.stop();
    },
  };
}

export async function seedFixtures(store: RedisStore, f: Fixtures): Promise<void> {
  await store.putTenant(f.tenant);
  for (const k of f.keys) await store.putKey(k);
  for (const a of f.agents) await store.putAgent(a);
}

/** Writes bulk agents [from, to) with their spiffe index, 5 000 commands per round trip. */
export async function seedBulk(url: string, from: number, to: number): Promise<void> {
  const keys = new RedisKeys(PREFIX);
  const client = new Redis(url);
  try {
    for (let start = from; start < to; start += 5000) {
      const p = client.pipeline();
      for (let i = start; i < Math.min(to, start + 5000); i++) {
        const a = bulkAgent(i);
        p.set(keys.agent(a.agent_id), JSON.stringify(a));
        p.set(keys.index({ by: 'spiffe', value: a.spiffe_id! }), a.agent_id);
        p.sadd(keys.agents, a.agent_id);
      }
      await p.exec();
    }
    await client.incr(keys.version);
  } finally {
    client.disconnect();
  }
}
