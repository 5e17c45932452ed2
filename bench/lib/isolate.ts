// Gives the server's core to the server for the bench, as an exclusive CPU would in production
// (Kubernetes' static CPU manager policy; `isolcpus`/`cset shield` on a benchmark host): every
// other thread on the machine that may run on that core — other services' threads, movable kernel
// threads — is moved off it, and put back afterwards. On the machine this bench was written on,
// DAMON's `kdamond` ran 1.7–4 ms on the server core every 512 ms and a RabbitMQ scheduler thread
// was bound to it; each of those is a stall no server can hide (README, Performance).
//
// Only as root, only with a single numeric server core, never when BENCH_ISOLATE=0. Per-CPU
// kernel threads (kworker/0:*, ksoftirqd/0) cannot move and stay. The saved affinities are also
// written to a file so that `bench/run.sh` can restore them if this process is killed.
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, run, start } from './procs.js';

export const AFFINITY_FILE = join(tmpdir(), 'agent-authz-bench-affinity.txt');

export interface Isolation {
  /** Threads moved off the core, by command name. */
  readonly moved: Readonly<Record<string, number>>;
  /** Why nothing was moved, when nothing was. */
  readonly skipped?: string;
  restore(): void;
}

/** Parses a kernel CPU list ("0-3,6") into CPU numbers. */
export function parseCpuList(list: string): number[] {
  const out: number[] = [];
  for (const part of list.trim().split(',')) {
    if (part === '') continue;
    const [a, b] = part.split('-').map(Number);
    for (let c = a!; c <= (b ?? a!); c++) out.push(c);
  }
  return out;
}

export function isolateCore(serverCpu: string | undefined, loadCpu: string): Isolation {
  const none = (skipped: string): Isolation => ({ moved: {}, skipped, restore: () => undefined });
  if (process.env.BENCH_ISOLATE === '0') return none('BENCH_ISOLATE=0');
  if (serverCpu === undefined || !/^\d+$/.test(serverCpu)) return none('server core not pinned');
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return none('not root on Linux');
  const cpu = Number(serverCpu);
  const fallback = loadCpu.split(/[,-]/)[0]!;
  const saved: string[] = [];
  const moved: Record<string, number> = {};
  for (const { tid, status } of threads()) {
    const list = /^Cpus_allowed_list:\s*(\S+)/m.exec(status)?.[1];
    if (list === undefined || !parseCpuList(list).includes(cpu)) continue;
    const rest = parseCpuList(list).filter((c) => c !== cpu);
    const target = rest.length > 0 ? rest.join(',') : fallback;
    const r = spawnSync('taskset', ['-pc', target, tid], { stdio: 'ignore' });
    if (r.status !== 0) continue; // a per-CPU kernel thread, or gone
    saved.push(`${tid} ${list}`);
    const name = /^Name:\s*(.*)$/m.exec(status)?.[1] ?? '?';
    moved[name] = (moved[name] ?? 0) + 1;
  }
  writeFileSync(AFFINITY_FILE, saved.join('\n') + '\n');
  return {
    moved,
    restore: () => {
      restoreAffinities(saved);
      restoreInherited(new Map(saved.map((l) => l.split(' ') as [string, string])), cpu);
      rmSync(AFFINITY_FILE, { force: true });
    },
  };
}

function restoreAffinities(saved: string[]): void {
  for (const line of saved) {
    const [tid, list] = line.split(' ');
    spawnSync('taskset', ['-pc', list!, tid!], { stdio: 'ignore' });
  }
}

/**
 * Threads and processes started during the run by a process that was moved inherited its reduced
 * affinity (a service's new thread, a child of PID 1): give them their creator's original one.
 */
function restoreInherited(original: Map<string, string>, cpu: number): void {
  for (const { pid, tid, status } of threads()) {
    if (original.has(tid)) continue;
    const list = /^Cpus_allowed_list:\s*(\S+)/m.exec(status)?.[1];
    const ppid = /^PPid:\s*(\d+)/m.exec(status)?.[1];
    const from = original.get(pid) ?? (ppid === undefined ? undefined : original.get(ppid));
    if (list === undefined || from === undefined) continue;
    const reduced = parseCpuList(from).filter((c) => c !== cpu);
    if (parseCpuList(list).join(',') !== reduced.join(',')) continue; // set by someone else
    spawnSync('taskset', ['-pc', from, tid], { stdio: 'ignore' });
  }
}

/** Every thread on the machine with its /proc status text (those that exit meanwhile are skipped). */
function* threads(): Generator<{ pid: string; tid: string; status: string }> {
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      try {
        yield { pid, tid, status: readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8') };
      } catch {
        continue;
      }
    }
  }
}

/** `Name ×count` of the threads moved, most first. */
export function describeMoved(moved: Readonly<Record<string, number>>): string {
  return Object.entries(moved)
    .sort((a, b) => b[1] - a[1])
    .map(([n, c]) => (c > 1 ? `${n} ×${c}` : n))
    .join(', ');
}

export interface CoreNoise {
  readonly seconds: number;
  readonly gaps_over_100us: number;
  readonly gaps_over_1ms: number;
  readonly gaps_over_2ms: number;
  readonly gaps_over_5ms: number;
  readonly max_gap_ms: number;
  readonly lost_ms_per_s: number;
}

const NOISE = join(ROOT, 'bench/openloop/noise');

/**
 * Time the server core is taken away from a busy thread, measured with `openloop/noise` pinned to
 * it while a second copy keeps the load core busy too (as the load generator does during a run:
 * with the load core idle, the kernel puts a movable thread there instead).
 */
export async function coreNoise(
  serverCpu: string,
  loadCpu: string,
  seconds: number,
): Promise<CoreNoise> {
  const probe = (cpu: string) =>
    run(NOISE, [String(seconds)], { cpu, timeoutMs: (seconds + 10) * 1000 });
  const [server] = await Promise.all([probe(serverCpu), probe(loadCpu)]);
  return JSON.parse(server) as CoreNoise;
}

/** What the bench reports about the server's core (bench/run.ts, report.ts). */
export interface ServerCore {
  readonly cpu: string;
  readonly isolated: boolean;
  readonly skipped?: string;
  readonly moved?: Readonly<Record<string, number>>;
  readonly noise_before: CoreNoise;
  readonly noise_after?: CoreNoise;
}

export function describeNoise(n: CoreNoise): string {
  return (
    `${n.lost_ms_per_s.toFixed(1)} ms/s lost; gaps >1 ms: ${n.gaps_over_1ms}, >2 ms: ` +
    `${n.gaps_over_2ms}, >5 ms: ${n.gaps_over_5ms} in ${n.seconds.toFixed(0)} s; max ${n.max_gap_ms.toFixed(2)} ms`
  );
}

const AWAKE = join(ROOT, 'bench/openloop/awake');

/**
 * Runs `measure` with the given cores kept from halting (`openloop/awake`: a SCHED_IDLE spinner
 * per core, which any other thread preempts at once), then stops the spinners. On a VM whose idle
 * vCPU halts, waking it costs up to milliseconds, and that lands on the server's answers and on
 * the generator's send and receive times alike (bench/README.md, "Idle cores"). With `cpus`
 * empty it runs `measure` alone.
 */
export async function keepAwake<T>(cpus: readonly string[], measure: () => Promise<T>): Promise<T> {
  const spinners = cpus.map((cpu) => start(`awake-${cpu}`, AWAKE, [], { cpu }));
  try {
    const result = await measure();
    // A spinner that died (not built, SCHED_IDLE refused) would leave a row labelled wrongly.
    const dead = spinners.find((p) => p.child.exitCode !== null || p.child.signalCode !== null);
    if (dead !== undefined) throw new Error(`${dead.name} exited: ${dead.output().slice(-500)}`);
    return result;
  } finally {
    await Promise.all(spinners.map((p) => p.stop()));
  }
}
