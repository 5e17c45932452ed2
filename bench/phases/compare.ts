// `BENCH_ONLY=compare BENCH_COMPARE_MAIN=/other/dist/src/cli/main.js`: A/B throughput of another
// build of agent-authz (e.g. before an optimisation) against this one, per path, interleaved
// A, B, B, A on the same core so that machine drift hits both alike.
import { HIT_PATHS, grpcFrame, type Fixtures, type PathName } from '../fixtures.js';
import { startAuthz, writeFrames } from '../lib/servers.js';
import { EXPECTED_AGENT, alternate, sanity } from './throughput.js';
import type { Context } from '../context.js';

export interface CompareRow {
  readonly path: PathName;
  readonly other_per_s: number;
  readonly this_per_s: number;
  readonly gain: number;
}

export async function compare(ctx: Context, f: Fixtures, otherMain: string): Promise<CompareRow[]> {
  const paths = (process.env.BENCH_PATHS ?? HIT_PATHS.join(',')).split(',') as PathName[];
  const other = await startAuthz('agent-authz-other', {
    env: ctx.authzEnv,
    cpu: ctx.serverCpu,
    main: otherMain,
  });
  const self = await startAuthz('agent-authz', { env: ctx.authzEnv, cpu: ctx.serverCpu });
  const rows: CompareRow[] = [];
  try {
    for (const p of paths) {
      for (const s of [other, self]) await sanity(s.grpcPort, f.bodies[p], EXPECTED_AGENT[p]);
      const [o, t] = await alternate(
        ctx,
        other,
        self,
        writeFrames(ctx.tmp, `cmp-${p}`, [grpcFrame(f.bodies[p])]),
      );
      rows.push({
        path: p,
        other_per_s: Math.round(o),
        this_per_s: Math.round(t),
        gain: Math.round((t / o) * 100) / 100,
      });
      ctx.log(`  ${p}: other ${o.toFixed(0)}/s, this ${t.toFixed(0)}/s (x${(t / o).toFixed(2)})`);
    }
  } finally {
    await other.stop();
    await self.stop();
  }
  return rows;
}
