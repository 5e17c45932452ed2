// V8 compiles hot functions (TurboFan) on its platform worker threads. On a pod with one or two
// cores those threads share the event loop's core, and each compile (2–30 ms of CPU) preempts
// request handling: on one pinned core, a fresh process's first run at 5 000 checks/s had p99
// 1.5–6.5 ms (median 2.1) while its later runs had ~1 ms; with these threads at nice 19, 0.8–1.9 ms
// (median 1.1; bench/README.md). They then run in the event loop's idle time: a compile finishes
// a little later and no request waits for it. The same threads sweep for the GC (the shipped V8
// flags keep every GC phase the event loop would wait for on the main thread), also in idle time.
//
// Linux only (the threads are found in /proc/self/task; elsewhere nothing is done). Node starts
// its threads in a fixed order before any JavaScript runs: the main thread, the platform's
// delayed-task scheduler and its V8 worker pool (`--v8-pool-size`, 4 by default), then the
// inspector's signal thread, then libuv's thread pool on first use. The libuv threads run
// request-path work (WebCrypto verification, DNS, file appends) and keep their priority, so only
// the first 1 + pool-size threads after the main one are lowered, and only if their thread IDs
// and start times say they were created first; otherwise nothing changes and the reason is
// returned.
import { readFileSync, readdirSync } from 'node:fs';
import { setPriority } from 'node:os';

export interface V8ThreadsResult {
  /** Thread IDs whose nice value was set. */
  readonly lowered: number[];
  readonly skipped?: string;
}

/** Size of V8's worker pool as Node was started (`--v8-pool-size`, in argv or NODE_OPTIONS). */
export function v8PoolSize(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string = process.env.NODE_OPTIONS ?? '',
): number {
  let size = 4;
  const args = [...nodeOptions.split(/\s+/), ...execArgv];
  for (const [i, a] of args.entries()) {
    const m = /^--v8[-_]pool[-_]size(?:=(.*))?$/.exec(a);
    if (m) size = Number(m[1] ?? args[i + 1]);
  }
  return size;
}

interface TaskInfo {
  readonly tid: number;
  readonly start: number;
}

/** The tids this process's platform threads have, or why they cannot be told apart. */
export function platformThreads(
  pid: number,
  tasks: readonly TaskInfo[],
  poolSize: number,
): number[] | string {
  // 0 lets Node size the pool from the core count: the number is not known here.
  if (!Number.isInteger(poolSize) || poolSize < 1) return `v8 pool size ${poolSize} not known`;
  const others = tasks.filter((t) => t.tid !== pid).sort((a, b) => a.tid - b.tid);
  // Thread IDs are handed out in increasing order unless the PID space wrapped around.
  if (others.some((t) => t.tid < pid)) return 'thread IDs wrapped around';
  const count = poolSize + 1;
  if (others.length < count) return `${others.length} threads, expected at least ${count}`;
  const chosen = others.slice(0, count);
  const rest = others.slice(count);
  const lastChosen = Math.max(...chosen.map((t) => t.start));
  if (rest.some((t) => t.start < lastChosen)) return 'thread start order is not the expected one';
  return chosen.map((t) => t.tid);
}

function readTasks(pid: number): TaskInfo[] {
  const dir = `/proc/${pid}/task`;
  return readdirSync(dir).map((name) => {
    const stat = readFileSync(`${dir}/${name}/stat`, 'utf8');
    // Fields after the parenthesised command name; starttime is field 22 of proc_pid_stat(5).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { tid: Number(name), start: Number(fields[19]) };
  });
}

/** Sets V8's background threads of this process to `nice`. */
export function lowerV8ThreadPriority(nice: number): V8ThreadsResult {
  if (process.platform !== 'linux') return { lowered: [], skipped: process.platform };
  let tasks: TaskInfo[];
  try {
    tasks = readTasks(process.pid);
  } catch (err) {
    return { lowered: [], skipped: `cannot read /proc: ${(err as Error).message}` };
  }
  const tids = platformThreads(process.pid, tasks, v8PoolSize());
  if (typeof tids === 'string') return { lowered: [], skipped: tids };
  const lowered: number[] = [];
  try {
    for (const tid of tids) {
      setPriority(tid, nice);
      lowered.push(tid);
    }
  } catch (err) {
    return { lowered, skipped: `setpriority: ${(err as Error).message}` };
  }
  return { lowered };
}
