// Revocation propagation: two replicas on one Redis, both with a warm cache that allows the agent;
// the agent is revoked through the store's write path (the one the admin API uses: Lua write +
// version + invalidation publish), and each replica is polled back to back until it denies.
// The time is measured from just before the write is issued, so it includes the write itself.
import * as hdr from 'hdr-histogram-js';
import { EnvoyCheckClient, reasonOf } from '../../test/helpers/official-envoy.js';
import type { RedisStore } from '../../src/registry/redis-store.js';
import type { Agent } from '../../src/registry/records.js';
import { TENANT, TRUST_DOMAIN, istioHeaders } from '../fixtures.js';
import { encodeOfficialRequest } from '../../test/helpers/official-envoy.js';
import { startAuthz } from '../lib/servers.js';
import type { Context } from '../context.js';

export interface RevocationResult {
  readonly trials: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly max_ms: number;
  readonly timeouts: number;
}

const SPIFFE = `spiffe://${TRUST_DOMAIN}/ns/bench/sa/revocable`;
const AGENT: Agent = {
  agent_id: 'bench-revocable',
  tenant: TENANT,
  agent_role: 'worker',
  status: 'approved',
  spiffe_id: SPIFFE,
};
const LIMIT_MS = 3000;

export async function revocation(ctx: Context, store: RedisStore): Promise<RevocationResult> {
  await store.putAgent(AGENT);
  const body = encodeOfficialRequest({ principal: SPIFFE, headers: istioHeaders(SPIFFE, 1) });
  const replicas = [
    await startAuthz('replica-a', { env: ctx.authzEnv, cpu: ctx.serverCpu }),
    await startAuthz('replica-b', { env: ctx.authzEnv, cpu: ctx.serverCpu }),
  ];
  const clients = replicas.map((r) => new EnvoyCheckClient(`127.0.0.1:${r.grpcPort}`));
  const h = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
  let timeouts = 0;
  const until = async (c: EnvoyCheckClient, allowed: boolean, from: number): Promise<number> => {
    while (performance.now() - from < LIMIT_MS) {
      if ((reasonOf(await c.checkRaw(body)) === 'allowed') === allowed)
        return performance.now() - from;
    }
    return Infinity;
  };
  try {
    for (let t = 0; t < ctx.trials; t++) {
      for (const c of clients)
        if ((await until(c, true, performance.now())) === Infinity)
          throw new Error('replica never allowed');
      const t0 = performance.now();
      const write = store.putAgent({ ...AGENT, status: 'revoked' });
      const times = await Promise.all(clients.map((c) => until(c, false, t0)));
      await write;
      const worst = Math.max(...times);
      if (worst === Infinity) timeouts++;
      else h.recordValue(Math.max(1, Math.round(worst * 1000)));
      await store.putAgent(AGENT);
    }
  } finally {
    for (const c of clients) c.close();
    for (const r of replicas) await r.stop();
  }
  return {
    trials: ctx.trials,
    p50_ms: h.getValueAtPercentile(50) / 1000,
    p99_ms: h.getValueAtPercentile(99) / 1000,
    max_ms: h.maxValue / 1000,
    timeouts,
  };
}
