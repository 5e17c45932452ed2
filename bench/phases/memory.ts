// Memory: RSS of one agent-authz process whose Redis registry holds 100 000 agents, once idle, once
// with 10 000 distinct agents in its cache; then a mixed-load soak sampling RSS to show whether it
// keeps growing (least-squares slope over the samples after the first quarter).
import { HIT_PATHS, bulkRequest, grpcFrame, type Fixtures } from '../fixtures.js';
import { fullGcs, loadgen, scrape, startAuthz, writeFrames } from '../lib/servers.js';
import { rssMiB, sleep } from '../lib/procs.js';
import type { Context } from '../context.js';

export interface MemoryResult {
  readonly registered_agents: number;
  readonly rss_idle_mib: number;
  readonly cache_entries: number;
  readonly rss_warm_mib: number;
  readonly soak: {
    readonly seconds: number;
    readonly rate: number;
    readonly samples_mib: number[];
    readonly slope_mib_per_min: number;
    readonly rss_max_mib: number;
    readonly errors: number;
    /** Full (mark-compact) collections during the soak and their mean pause (Node's GC metric). */
    readonly full_gcs: number;
    readonly full_gc_mean_ms: number;
  };
}

export async function memory(ctx: Context, f: Fixtures, registered: number): Promise<MemoryResult> {
  const warmFrames: Buffer[] = [];
  for (let i = 0; i < 10_000; i++) warmFrames.push(grpcFrame(bulkRequest(i)));
  const warmFile = writeFrames(ctx.tmp, 'warm-10k', warmFrames);
  const mixed: Buffer[] = [];
  for (let i = 0; i < 10_000; i++)
    mixed.push(warmFrames[i]!, grpcFrame(f.bodies[HIT_PATHS[i % HIT_PATHS.length]!]));
  const mixedFile = writeFrames(ctx.tmp, 'mixed', mixed);

  const authz = await startAuthz('agent-authz-memory', {
    env: ctx.authzEnv,
    cpu: ctx.serverCpu,
    nodeArgs: ctx.nodeArgs,
    main: ctx.authzMain,
  });
  const pid = authz.proc.child.pid!;
  try {
    await sleep(2000);
    const idle = rssMiB(pid);
    // 10 000 distinct agents, once each (5 s at 2 000/s, no warm-up): the cache now holds them all.
    const warm = await loadgen(authz.grpcPort, warmFile, { rate: 2000, seconds: 5, warmup: 0 });
    if (warm.ok !== 10_000) ctx.log(`  warning: warm-up allowed ${warm.ok} of 10000`);
    await sleep(1500);
    const entries = await scrape(authz.httpPort, 'agent_authz_registry_cache_entries');
    const warmRss = rssMiB(pid);
    ctx.log(
      `  RSS idle ${idle.toFixed(1)} MiB, with ${entries} cache entries ${warmRss.toFixed(1)} MiB`,
    );

    const rate = 2000;
    const samples: number[] = [];
    const gc0 = await fullGcs(authz.httpPort);
    const soak = loadgen(authz.grpcPort, mixedFile, { rate, seconds: ctx.soakSeconds, warmup: 0 });
    let done = false;
    void soak.finally(() => (done = true));
    while (!done) {
      await sleep(5000);
      if (!done) samples.push(Math.round(rssMiB(pid) * 10) / 10);
    }
    const r = await soak;
    const gc1 = await fullGcs(authz.httpPort);
    const tail = samples.slice(Math.floor(samples.length / 4));
    const slope = slopePerMinute(tail, 5);
    ctx.log(
      `  soak ${ctx.soakSeconds}s @${rate}/s: RSS ${samples[0]} → ${samples.at(-1)} MiB, slope ${slope.toFixed(2)} MiB/min`,
    );
    return {
      registered_agents: registered,
      rss_idle_mib: round1(idle),
      cache_entries: entries,
      rss_warm_mib: round1(warmRss),
      soak: {
        seconds: ctx.soakSeconds,
        rate,
        samples_mib: samples,
        slope_mib_per_min: Math.round(slope * 100) / 100,
        rss_max_mib: Math.max(...samples),
        errors: r.grpcErrors + r.transportErrors + r.denied,
        full_gcs: gc1.count - gc0.count,
        full_gc_mean_ms:
          gc1.count > gc0.count
            ? Math.round(((gc1.seconds - gc0.seconds) / (gc1.count - gc0.count)) * 10_000) / 10
            : 0,
      },
    };
  } finally {
    await authz.stop();
  }
}

function slopePerMinute(ys: number[], stepSeconds: number): number {
  if (ys.length < 2) return 0;
  const xs = ys.map((_, i) => (i * stepSeconds) / 60);
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < xs.length; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return num / den;
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}
