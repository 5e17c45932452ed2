// Saturation throughput per path (h2load) against the baseline fed the same bytes, and open-loop
// latency at fixed offered rates (bench/openloop), including the registry cache-miss path.
import { EnvoyCheckClient, reasonOf, setHeaders } from '../../test/helpers/official-envoy.js';
import { HIT_PATHS, bulkRequest, grpcFrame, type Fixtures, type PathName } from '../fixtures.js';
import {
  h2load,
  loadgen,
  fullGcs,
  scrape,
  startAuthz,
  startBaseline,
  startFloor,
  writeFrames,
  type LoadgenResult,
  type Server,
} from '../lib/servers.js';
import type { Context } from '../context.js';
import { keepAwake } from '../lib/isolate.js';

export const EXPECTED_AGENT: Record<PathName, string> = {
  spiffe: 'bench-spiffe',
  pki: 'bench-pki',
  api_key: 'bench-key-agent',
  jwt_rs256: 'bench-jwt-rs',
  jwt_es256: 'bench-jwt-es',
};

/** One real call per path before any load: gRPC OK, allowed, and the expected agent. */
export async function sanity(
  port: number,
  body: Uint8Array,
  expectAgent: string | undefined,
): Promise<void> {
  const client = new EnvoyCheckClient(`127.0.0.1:${port}`);
  try {
    // A server (or worker) still connecting to Redis denies with registry_unavailable: wait.
    let res = await client.checkRaw(body);
    for (let i = 0; i < 50 && reasonOf(res) === 'registry_unavailable'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      res = await client.checkRaw(body);
    }
    const reason = reasonOf(res);
    const agent = setHeaders(res)['x-agent-id'];
    if (reason !== 'allowed' || (expectAgent !== undefined && agent !== expectAgent))
      throw new Error(
        `sanity check failed on :${port}: ${reason}, agent ${agent ?? '-'} (expected ${expectAgent ?? 'allow'})`,
      );
  } finally {
    client.close();
  }
}

export interface PathThroughput {
  readonly path: PathName;
  readonly bytes: number;
  readonly baseline_per_s: number;
  readonly authz_per_s: number;
  readonly ratio: number;
  readonly h2load_failed: number;
}

export async function throughput(ctx: Context, f: Fixtures): Promise<PathThroughput[]> {
  const out: PathThroughput[] = [];
  // Both servers run for the whole phase (pinned to the same core; the idle one costs nothing) and
  // each path is measured baseline, agent-authz, agent-authz, baseline: the machine's drift hits
  // both sides alike.
  const baseline = await startBaseline();
  const authz = await startAuthz('agent-authz', {
    env: ctx.authzEnv,
    cpu: ctx.serverCpu,
    nodeArgs: ctx.nodeArgs,
    main: ctx.authzMain,
  });
  try {
    // One untimed pass over every path first, so no path is measured while the JIT is still
    // compiling what it exercises (the first path measured used to come out low).
    for (const p of HIT_PATHS) {
      const file = writeFrames(ctx.tmp, p, [grpcFrame(f.bodies[p])]);
      for (const s of [baseline, authz]) await h2load(s.grpcPort, file, 2);
    }
    for (const p of HIT_PATHS) {
      const file = writeFrames(ctx.tmp, p, [grpcFrame(f.bodies[p])]);
      await sanity(baseline.grpcPort, f.bodies[p], undefined);
      await sanity(authz.grpcPort, f.bodies[p], EXPECTED_AGENT[p]);
      const [b, a, failed] = await alternate(ctx, baseline, authz, file);
      out.push({
        path: p,
        bytes: f.bodies[p].length,
        baseline_per_s: Math.round(b),
        authz_per_s: Math.round(a),
        ratio: round(a / b),
        h2load_failed: failed,
      });
      ctx.log(
        `  ${p}: baseline ${b.toFixed(0)}/s, agent-authz ${a.toFixed(0)}/s (${(a / b).toFixed(2)} x)`,
      );
    }
    // Every response must still be a decision for the expected agent after the load.
    for (const p of HIT_PATHS) await sanity(authz.grpcPort, f.bodies[p], EXPECTED_AGENT[p]);
  } finally {
    await baseline.stop();
    await authz.stop();
  }
  return out;
}

/** Mean req/s of `a` and `b` over the sequence a, b, b, a; plus b's failed requests. */
export async function alternate(
  ctx: Context,
  a: Server,
  b: Server,
  file: string,
): Promise<[number, number, number]> {
  let sa = 0;
  let sb = 0;
  let failed = 0;
  for (const s of [a, b, b, a]) {
    const r = await h2load(s.grpcPort, file, ctx.seconds);
    if (s === a) sa += r.req_per_s / 2;
    else {
      sb += r.req_per_s / 2;
      failed += r.failed + r.errored;
    }
  }
  return [sa, sb, failed];
}

export const FLOOR_PATH = 'floor: h2c listener, constant allow';

export interface LatencyRow extends LoadgenResult {
  readonly path: string;
  readonly rate: number;
  /** Every run's p99 (ms), in order; the row's percentiles are medians over these runs. */
  readonly p99_runs_ms: number[];
  readonly note?: string;
}

/**
 * Open-loop latency, each row the median of `ctx.latencyRepeats` runs, the baseline's rows
 * measured in the same rounds (round-robin over every row per repeat), so a stall of the machine
 * itself lands on the baseline as often as on agent-authz instead of on one unlucky row.
 */
export async function latency(ctx: Context, f: Fixtures): Promise<LatencyRow[]> {
  const baseline = await startBaseline();
  const floor = await startFloor();
  const authz = await startAuthz('agent-authz', {
    env: ctx.authzEnv,
    cpu: ctx.serverCpu,
    nodeArgs: ctx.nodeArgs,
    main: ctx.authzMain,
  });
  // The same server on the fallback transport (grpc-js), for what the h2c one buys.
  const authzGrpcJs = await startAuthz('agent-authz-grpc-js', {
    env: { ...ctx.authzEnv, AGENT_AUTHZ_GRPC_TRANSPORT: 'grpc-js' },
    cpu: ctx.serverCpu,
    nodeArgs: ctx.nodeArgs,
    main: ctx.authzMain,
  });
  const file = (p: PathName) => writeFrames(ctx.tmp, `lat-${p}`, [grpcFrame(f.bodies[p])]);
  // SPIFFE also at a low rate: the latency of the path itself, without queueing.
  // The floors (an agent-authz listener answering a constant allow) show what the transport alone
  // costs at each rate on this machine: agent-authz cannot do better than its listener.
  const specs: Spec[] = [
    { path: 'baseline (spiffe bytes)', rate: ctx.lowRate, server: baseline, file: file('spiffe') },
    { path: 'baseline (spiffe bytes)', rate: ctx.hitRate, server: baseline, file: file('spiffe') },
    { path: FLOOR_PATH, rate: ctx.lowRate, server: floor, file: file('spiffe') },
    { path: FLOOR_PATH, rate: ctx.hitRate, server: floor, file: file('spiffe') },
    { path: 'spiffe', rate: ctx.lowRate, server: authz, file: file('spiffe') },
    ...(['spiffe', 'pki', 'api_key', 'jwt_rs256'] as const).map((p) => ({
      path: p as string,
      rate: ctx.hitRate,
      server: authz,
      file: file(p),
    })),
    {
      path: 'spiffe, grpc-js transport',
      rate: ctx.hitRate,
      server: authzGrpcJs,
      file: file('spiffe'),
    },
  ];
  // Every row runs with both cores kept from halting (ctx.awake); the floor rows and SPIFFE at the
  // hit rate are run once more without, so each run shows what the host's idle wake-ups add.
  if (ctx.awake.length > 0)
    for (const s of specs.filter((s) => s.path === FLOOR_PATH || s.path === 'spiffe'))
      if (s.path === FLOOR_PATH || s.rate === ctx.hitRate) specs.push({ ...s, halting: true });
  const runs: LoadgenResult[][] = specs.map(() => []);
  let gcNote = '';
  try {
    for (let rep = 0; rep < ctx.latencyRepeats; rep++)
      for (const [i, s] of specs.entries()) runs[i]!.push(await measureRun(ctx, s, rep));
    gcNote = await fullGcNote(authz.httpPort);
  } finally {
    await baseline.stop();
    await floor.stop();
    await authz.stop();
    await authzGrpcJs.stop();
  }
  const rows: LatencyRow[] = specs.map((s, i) => ({
    path: rowName(s),
    rate: s.rate,
    ...medianRun(runs[i]!),
    ...(s.server === authz && s.rate === ctx.lowRate
      ? { note: `the agent-authz process behind these rows, over all of them: ${gcNote}` }
      : {}),
  }));
  rows.push(...(await cacheMiss(ctx)));
  return rows;
}

interface Spec {
  readonly path: string;
  readonly rate: number;
  readonly server: Server;
  readonly file: string;
  /** Run without keeping the cores awake (ctx.awake), to show what idle wake-ups cost. */
  readonly halting?: boolean;
}

/** Rows run with idle cores left to halt carry this after their path; they have no target. */
export const HALTING = ', idle cores halt';

const rowName = (s: { path: string; halting?: boolean }) =>
  s.halting === true ? s.path + HALTING : s.path;

/** One open-loop run of a row, with the cores kept awake unless the row is a halting one. */
async function measureRun(ctx: Context, s: Spec, rep: number): Promise<LoadgenResult> {
  const r = await keepAwake(s.halting === true ? [] : ctx.awake, () =>
    loadgen(s.server.grpcPort, s.file, {
      rate: s.rate,
      seconds: ctx.latencySeconds,
      serverPid: s.server.proc.child.pid,
    }),
  );
  ctx.log(
    `  latency ${rowName(s)} @${s.rate}/s run ${rep + 1}: p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms, server CPU ${r.server_cpu_pct}%`,
  );
  return r;
}

/** How many full (mark-compact) collections a server has run, and their mean pause. */
async function fullGcNote(port: number): Promise<string> {
  const { count, seconds } = await fullGcs(port);
  return count === 0
    ? 'no full GC'
    : `${count} full GCs, mean pause ${((seconds / count) * 1000).toFixed(1)} ms`;
}

/** Per-field medians over runs (errors summed): one stalled run cannot decide a row alone. */
function medianRun(runs: LoadgenResult[]): LoadgenResult & { p99_runs_ms: number[] } {
  const med = (k: keyof LoadgenResult) => {
    const v = runs.map((r) => r[k] ?? NaN).sort((a, b) => a - b);
    return v[Math.floor(v.length / 2)]!;
  };
  const sum = (k: keyof LoadgenResult) => runs.reduce((t, r) => t + (r[k] ?? 0), 0);
  return {
    achieved_per_s: med('achieved_per_s'),
    ok: sum('ok'),
    denied: sum('denied'),
    grpcErrors: sum('grpcErrors'),
    transportErrors: sum('transportErrors'),
    late_sends_max_ms: Math.max(...runs.map((r) => r.late_sends_max_ms)),
    p50_ms: med('p50_ms'),
    p90_ms: med('p90_ms'),
    p99_ms: med('p99_ms'),
    p999_ms: med('p999_ms'),
    max_ms: Math.max(...runs.map((r) => r.max_ms)),
    server_cpu_pct: med('server_cpu_pct'),
    p99_runs_ms: runs.map((r) => r.p99_ms),
  };
}

/**
 * Every agent lookup misses: the cache holds at most 100 entries (the configured minimum) and the
 * requests cycle through 20 000 distinct registered SPIFFE IDs, so an ID is never requested again
 * before it has been evicted. The tenant lookup, shared by all of them, still hits (as it would
 * in production). The miss count is read back from the server's own metrics.
 */
async function cacheMiss(ctx: Context): Promise<LatencyRow[]> {
  const frames: Buffer[] = [];
  for (let i = 10_000; i < 30_000; i++) frames.push(grpcFrame(bulkRequest(i)));
  const file = writeFrames(ctx.tmp, 'cache-miss', frames);
  const env = { ...ctx.authzEnv, AGENT_AUTHZ_CACHE_MAX_ENTRIES: '100' };
  const authz: Server = await startAuthz('agent-authz-miss', {
    env,
    cpu: ctx.serverCpu,
    nodeArgs: ctx.nodeArgs,
    main: ctx.authzMain,
  });
  try {
    const rate = ctx.missRate;
    const metric = 'agent_authz_registry_cache_requests_total';
    const misses0 = await scrape(authz.httpPort, metric, 'result="miss"');
    // Alternating with the cores kept awake and, when that is on, left to halt (no target).
    const modes = ctx.awake.length > 0 ? [false, true] : [false];
    const runs: LoadgenResult[][] = modes.map(() => []);
    for (let rep = 0; rep < ctx.latencyRepeats; rep++)
      for (const [m, halting] of modes.entries()) {
        const spec = { path: 'cache_miss', rate, server: authz, file, halting };
        runs[m]!.push(await measureRun(ctx, spec, rep));
      }
    const misses = (await scrape(authz.httpPort, metric, 'result="miss"')) - misses0;
    const sent = modes.length * ctx.latencyRepeats * rate * (ctx.latencySeconds + 2);
    const note = `${misses} registry cache misses for ${sent} checks sent (incl. 2 s warm-ups); ${await fullGcNote(authz.httpPort)}`;
    return modes.map((halting, m) => ({
      path: rowName({ path: 'cache_miss', halting }),
      rate,
      ...(m === 0 ? { note } : {}),
      ...medianRun(runs[m]!),
    }));
  } finally {
    await authz.stop();
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
