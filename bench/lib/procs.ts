// Child processes for the bench: servers pinned to a core with taskset, bounded waits, clean stops,
// and RSS read from /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { cpus } from 'node:os';

export const ROOT = new URL('../../', import.meta.url).pathname;
export const SERVER_CPU = process.env.BENCH_SERVER_CPU ?? '0';
export const LOAD_CPU = process.env.BENCH_LOAD_CPU ?? '1';

export interface Proc {
  readonly child: ChildProcess;
  readonly name: string;
  output(): string;
  stop(): Promise<void>;
}

/** Spawns `cmd args`, under `taskset -c cpu` when a cpu is given. */
export function start(
  name: string,
  cmd: string,
  args: string[],
  opts: { cpu?: string; env?: NodeJS.ProcessEnv } = {},
): Proc {
  // Unpinned still goes through taskset: the harness itself runs pinned to the load core, and a
  // child would otherwise inherit that.
  const cpu = opts.cpu ?? (SERVER_CPU === 'none' ? undefined : `0-${cpus().length - 1}`);
  const argv = cpu === undefined ? [cmd, ...args] : ['taskset', '-c', cpu, cmd, ...args];
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (b: Buffer) => {
    out = (out + b.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return {
    child,
    name,
    output: () => out,
    stop: () => stop(child),
  };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
  await exited;
  clearTimeout(timer);
}

/** Runs a command to completion (bounded) and returns its stdout. */
export function run(
  cmd: string,
  args: string[],
  opts: { cpu?: string; timeoutMs: number; env?: NodeJS.ProcessEnv },
): Promise<string> {
  const p = start(cmd, cmd, args, opts);
  let stdout = '';
  p.child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      p.child.kill('SIGKILL');
      reject(new Error(`${cmd} timed out after ${opts.timeoutMs} ms`));
    }, opts.timeoutMs);
    p.child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${p.output().slice(-2000)}`));
    });
  });
}

export async function waitForPort(port: number, proc: Proc, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (proc.child.exitCode !== null)
      throw new Error(`${proc.name} exited: ${proc.output().slice(-3000)}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`${proc.name} did not listen on ${port}: ${proc.output().slice(-3000)}`);
}

/** Resident set size of a process in MiB (VmRSS). */
export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? NaN : Number(m[1]) / 1024;
}

/** CPU time (user + system) a process, or one of its threads, has used so far, in seconds. */
export function cpuSeconds(pid: number, thread?: number): number {
  // Fields after the command name: state is field 3, utime and stime are fields 14 and 15.
  const path = thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`;
  const stat = readFileSync(path, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
}
/** USER_HZ: the unit of /proc/<pid>/stat times, 100 on every Linux platform Node runs on. */
const CLOCK_TICKS = 100;

/** The pids of a process's children (the workers of a cluster primary). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
