// Multi-core scaling: `serve --workers 1` against `--workers 2` on the SPIFFE path. The machine has
// two cores, so nothing is pinned here and h2load shares the cores with the workers: the figure
// understates what two dedicated cores would give.
import { grpcFrame, type Fixtures } from '../fixtures.js';
import { h2load, scrape, startAuthz, writeFrames } from '../lib/servers.js';
import { sleep } from '../lib/procs.js';
import { sanity } from './throughput.js';
import type { Context } from '../context.js';

export interface WorkersResult {
  readonly one_per_s: number;
  readonly two_per_s: number;
  readonly scaling: number;
  /** Decisions counted by the primary's aggregated /metrics against h2load's own count. */
  readonly metrics_decisions: number;
  readonly h2load_succeeded: number;
}

export async function workers(ctx: Context, f: Fixtures): Promise<WorkersResult> {
  const file = writeFrames(ctx.tmp, 'workers-spiffe', [grpcFrame(f.bodies.spiffe)]);
  const rates: number[] = [];
  let decisions = 0;
  let succeeded = 0;
  for (const n of [1, 2]) {
    const authz = await startAuthz(`agent-authz-w${n}`, {
      env: ctx.authzEnv,
      args: ['--workers', String(n)],
    });
    try {
      // Several connections so that the primary can hand them to different workers.
      for (let i = 0; i < 4; i++) await sanity(authz.grpcPort, f.bodies.spiffe, 'bench-spiffe');
      const before = await scrape(authz.httpPort, 'agent_authz_decisions_total');
      const r = await h2load(authz.grpcPort, file, ctx.seconds, false);
      await sleep(200);
      decisions = (await scrape(authz.httpPort, 'agent_authz_decisions_total')) - before;
      succeeded = r.succeeded;
      rates.push(Math.round(r.req_per_s));
      ctx.log(
        `  --workers ${n}: ${r.req_per_s.toFixed(0)}/s (metrics counted ${decisions} decisions, h2load ${r.succeeded} incl. warm-up)`,
      );
    } finally {
      await authz.stop();
    }
  }
  return {
    one_per_s: rates[0]!,
    two_per_s: rates[1]!,
    scaling: Math.round((rates[1]! / rates[0]!) * 100) / 100,
    metrics_decisions: decisions,
    h2load_succeeded: succeeded,
  };
}
