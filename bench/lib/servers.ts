// Starting the servers under test (baseline and agent-authz from dist/), and the load tools
// (h2load for saturation throughput, bench/openloop for open-loop latency), all on 127.0.0.1.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../test/helpers/redis.js';
import {
  LOAD_CPU,
  ROOT,
  SERVER_CPU,
  cpuSeconds,
  run,
  start,
  waitForPort,
  type Proc,
} from './procs.js';

export interface Server {
  readonly proc: Proc;
  readonly grpcPort: number;
  readonly httpPort: number;
  stop(): Promise<void>;
}

const NODE = process.execPath;

export async function startBaseline(cpu: string | undefined = SERVER_CPU): Promise<Server> {
  const grpcPort = await freePort();
  const proc = start(
    'baseline',
    NODE,
    ['--import', 'tsx', 'bench/baseline-server.ts', String(grpcPort)],
    cpu === undefined ? {} : { cpu },
  );
  await waitForPort(grpcPort, proc);
  return { proc, grpcPort, httpPort: 0, stop: () => proc.stop() };
}

/** The transport floor (bench/floor-server.ts): an agent-authz listener, constant allow. */
export async function startFloor(cpu: string | undefined = SERVER_CPU): Promise<Server> {
  const grpcPort = await freePort();
  const proc = start(
    'floor-h2c',
    NODE,
    [...RUNTIME_FLAGS, '--import', 'tsx', 'bench/floor-server.ts', String(grpcPort)],
    cpu === undefined ? {} : { cpu },
  );
  await waitForPort(grpcPort, proc);
  return { proc, grpcPort, httpPort: 0, stop: () => proc.stop() };
}

export interface AuthzOptions {
  readonly env: Record<string, string>;
  readonly cpu?: string | undefined;
  readonly args?: string[];
  readonly nodeArgs?: string[];
  /** Another build's dist/src/cli/main.js (A/B comparisons); default this checkout's. */
  readonly main?: string | undefined;
}

/**
 * The V8 flags agent-authz ships with (deploy/Dockerfile's ENTRYPOINT, `make run`; a deploy test
 * keeps the three in step). On a pod's one or two cores, V8's helper threads for concurrent
 * marking and parallel scavenges compete with the event loop for the same core and turned each
 * old-generation collection into a 30–90 ms stall (p99 at 5 000/s: 30–50 ms); doing GC work on the
 * main thread and letting the old generation reach 128 MB before the first full collection took
 * it to 3–9 ms. Every GC phase the event loop would wait for stays on the main thread (no
 * parallel scavenge, marking, compaction or pointer update; no concurrent marking, V8's or
 * cppgc's: without the second, Node 20 aborts at its first full collection, see
 * test/deploy/runtime-flags.test.ts). Sweeping — the ArrayBuffer sweep was a third of each
 * scavenge under `--single-threaded-gc` — runs on V8's worker threads, which agent-authz lowers
 * to nice 19 (server/v8-threads.ts), so it uses the event loop's idle time. Without
 * allocation-site pretenuring: about two processes in five otherwise settled
 * into a mode where ~750 KB of each check's garbage was promoted at every scavenge (2.3–3.7 ms
 * pauses instead of 0.7 ms, p99 3–5 ms); with it off, none of 14 starts did. 64 MB of initial old
 * space was tried for RSS under load (10-minute soak 138–175 MiB instead of 149–222) and dropped:
 * it doubled the full collections behind the latency rows (6 against 3, 27–33 ms pauses each).
 * 96 MB since run AE: with 128 the 10-minute soak climbed to 207.9 MiB before V8's first full
 * collection; with 96 it peaked at 183.9 MiB (5 full collections, 15.2 ms mean pause) while the
 * latency rows met their targets. See README, Performance.
 */
export const RUNTIME_FLAGS = [
  '--no-parallel-scavenge',
  '--no-parallel-marking',
  '--no-concurrent-marking',
  '--no-cppheap-concurrent-marking',
  '--no-parallel-compaction',
  '--no-parallel-pointer-update',
  '--initial-old-space-size=96',
  '--no-allocation-site-pretenuring',
];

/** agent-authz from dist/ (what `make build` produced), configured by environment only. */
export async function startAuthz(name: string, o: AuthzOptions): Promise<Server> {
  const grpcPort = await freePort();
  const httpPort = await freePort();
  const env = {
    AGENT_AUTHZ_BIND_ADDRESS: '127.0.0.1',
    AGENT_AUTHZ_GRPC_PORT: String(grpcPort),
    AGENT_AUTHZ_HTTP_PORT: String(httpPort),
    AGENT_AUTHZ_ADMIN_ENABLED: 'false',
    AGENT_AUTHZ_LOG_LEVEL: 'warn',
    AGENT_AUTHZ_REGISTRY_WATCH: 'false',
    ...o.env,
  };
  const args = [
    ...RUNTIME_FLAGS,
    ...(o.nodeArgs ?? []),
    o.main ?? join(ROOT, 'dist/src/cli/main.js'),
    'serve',
    ...(o.args ?? []),
  ];
  const proc = start(name, NODE, args, o.cpu === undefined ? { env } : { env, cpu: o.cpu });
  await waitForPort(grpcPort, proc);
  await waitForPort(httpPort, proc);
  return { proc, grpcPort, httpPort, stop: () => proc.stop() };
}

export interface H2loadResult {
  readonly req_per_s: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly errored: number;
}

/** Saturation throughput of one pre-encoded request with h2load (one thread, on the load core). */
export async function h2load(
  port: number,
  frameFile: string,
  seconds: number,
  pin: boolean = true,
): Promise<H2loadResult> {
  const clients = process.env.BENCH_H2LOAD_CLIENTS ?? '4';
  const streams = process.env.BENCH_H2LOAD_STREAMS ?? '32';
  const args = [
    '-t',
    '1',
    '-c',
    clients,
    '-m',
    streams,
    '-D',
    String(seconds),
    '--warm-up-time',
    '2',
    '-d',
    frameFile,
    '-H',
    'content-type: application/grpc',
    '-H',
    'te: trailers',
    `http://127.0.0.1:${port}/envoy.service.auth.v3.Authorization/Check`,
  ];
  const out = await run('h2load', args, {
    timeoutMs: (seconds + 30) * 1000,
    ...(pin ? { cpu: LOAD_CPU } : {}),
  });
  const rps = /finished in [^,]+, ([\d.]+) req\/s/.exec(out);
  const req =
    /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(
      out,
    );
  if (rps === null || req === null) throw new Error(`cannot parse h2load output:\n${out}`);
  return {
    req_per_s: Number(rps[1]),
    succeeded: Number(req[1]),
    failed: Number(req[2]),
    errored: Number(req[3]),
  };
}

export interface LoadgenResult {
  readonly achieved_per_s: number;
  readonly ok: number;
  readonly denied: number;
  readonly grpcErrors: number;
  readonly transportErrors: number;
  /** CPU the server process used over the run (warm-up included), in % of one core. */
  readonly server_cpu_pct?: number;
  /** Largest delay between a request's scheduled and actual send: did the generator keep up? */
  readonly late_sends_max_ms: number;
  readonly p50_ms: number;
  readonly p90_ms: number;
  readonly p99_ms: number;
  readonly p999_ms: number;
  readonly max_ms: number;
}

export const OPENLOOP = join(ROOT, 'bench/openloop/openloop');

/** Open-loop latency at a fixed offered rate with bench/openloop (C, on the load core). */
export async function loadgen(
  port: number,
  frameFile: string,
  o: {
    rate: number;
    seconds: number;
    warmup?: number;
    connections?: number;
    pin?: boolean;
    /** The server's pid: its CPU use over the run is reported as server_cpu_pct. */
    serverPid?: number | undefined;
  },
): Promise<LoadgenResult> {
  const args = [
    '--target',
    `127.0.0.1:${port}`,
    '--frames',
    frameFile,
    '--rate',
    String(o.rate),
    '--duration',
    String(o.seconds),
    '--warmup',
    String(o.warmup ?? 2),
    '--connections',
    String(o.connections ?? 2),
  ];
  const cpu0 = o.serverPid === undefined ? 0 : cpuSeconds(o.serverPid);
  const t0 = performance.now();
  const out = await run(OPENLOOP, args, {
    timeoutMs: (o.seconds + (o.warmup ?? 2) + 30) * 1000,
    ...(o.pin === false ? {} : { cpu: LOAD_CPU }),
  });
  const result = JSON.parse(out.trim().split('\n').pop()!) as LoadgenResult;
  if (o.serverPid === undefined) return result;
  const used = cpuSeconds(o.serverPid) - cpu0;
  const wall = (performance.now() - t0) / 1000;
  return { ...result, server_cpu_pct: Math.round((used / wall) * 100) };
}

export function writeFrames(dir: string, name: string, frames: Buffer[]): string {
  const file = join(dir, `${name}.bin`);
  writeFileSync(file, Buffer.concat(frames));
  return file;
}

/** Sum of a Prometheus counter's samples whose labels contain `match`. */
export async function scrape(port: number, metric: string, match = ''): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(metric)) continue;
    const rest = line.slice(metric.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    if (match !== '' && !line.includes(match)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Full (mark-compact) collections a server has run so far and their summed pause (Node's GC metric). */
export async function fullGcs(port: number): Promise<{ count: number; seconds: number }> {
  const metric = 'agent_authz_nodejs_gc_duration_seconds';
  return {
    count: await scrape(port, `${metric}_count`, 'kind="major"'),
    seconds: await scrape(port, `${metric}_sum`, 'kind="major"'),
  };
}
