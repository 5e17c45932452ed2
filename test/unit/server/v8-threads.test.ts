// V8's compiler threads are lowered to nice 19, and only they: libuv's thread pool (WebCrypto,
// DNS, file appends — request-path work) keeps its priority. The process check runs a real Node
// child, makes its thread pool and its JIT compiler work, and sees which threads did the work.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { platformThreads, v8PoolSize } from '../../../src/server/v8-threads.js';

const SOURCE = new URL('../../../src/server/v8-threads.ts', import.meta.url).pathname;

describe('v8PoolSize', () => {
  it('is 4 unless --v8-pool-size says otherwise, in argv or NODE_OPTIONS', () => {
    expect(v8PoolSize([], '')).toBe(4);
    expect(v8PoolSize(['--v8-pool-size=2'], '')).toBe(2);
    expect(v8PoolSize(['--v8-pool-size', '3'], '')).toBe(3);
    expect(v8PoolSize([], '--max-old-space-size=100 --v8_pool_size=6')).toBe(6);
    // argv comes after NODE_OPTIONS, as Node applies them
    expect(v8PoolSize(['--v8-pool-size=1'], '--v8-pool-size=6')).toBe(1);
    expect(v8PoolSize(['--v8-pool-size=0'], '')).toBe(0);
  });
});

describe('platformThreads', () => {
  const t = (tid: number, start: number) => ({ tid, start });
  const node20 = [t(100, 10), t(101, 19), t(102, 19), t(103, 19), t(104, 19), t(105, 19)];
  const libuv = [t(106, 20), t(107, 22), t(108, 22), t(109, 22), t(110, 22)];

  it('picks the scheduler and the pool: the first pool+1 threads after the main one', () => {
    expect(platformThreads(100, [...libuv, ...node20].reverse(), 4)).toEqual([
      101, 102, 103, 104, 105,
    ]);
    expect(platformThreads(100, [...node20, ...libuv], 2)).toEqual([101, 102, 103]);
  });

  it('refuses when the threads cannot be told apart', () => {
    expect(platformThreads(100, node20, 0)).toMatch(/not known/);
    expect(platformThreads(100, [t(100, 10), t(101, 19)], 4)).toMatch(/expected at least 5/);
    // a later thread that started before the chosen ones: the order is not the one Node uses
    expect(platformThreads(100, [...node20, t(106, 18), ...libuv.slice(1)], 4)).toMatch(
      /start order/,
    );
    expect(platformThreads(100, [...node20, t(7, 30)], 4)).toMatch(/wrapped/);
  });
});

const CHILD = `
import { lowerV8ThreadPriority } from './v8-threads.mjs';
import { pbkdf2 } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
const result = lowerV8ThreadPriority(19);
const threads = () => Object.fromEntries(readdirSync('/proc/self/task').map((tid) => {
  const stat = readFileSync('/proc/self/task/' + tid + '/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [tid, { cpu: Number(f[11]) + Number(f[12]), nice: Number(f[16]) }];
}));
const before = threads();
// libuv's thread pool: CPU-heavy async work
await Promise.all(Array.from({ length: 4 }, () =>
  new Promise((done) => pbkdf2('p', 's', 300000, 32, 'sha256', done))));
const afterPool = threads();
// the JIT: many distinct hot functions for TurboFan to compile in the background
let sink = 0;
for (let i = 0; i < 600; i++) {
  const f = new Function('n', 'let s = ' + i + '; for (let j = 0; j < n; j++) s = (s * 31 + (j ^ ' + i + ')) | 0; return s;');
  for (let k = 0; k < 40; k++) sink ^= f(3000);
}
// wait for the background work (at nice 19 it can take a while on a busy machine)
let afterJit = threads();
for (let i = 0; i < 200; i++) {
  await new Promise((r) => setTimeout(r, 100));
  afterJit = threads();
  const moved = Object.keys(afterJit).some((tid) =>
    tid !== String(process.pid) && afterJit[tid].cpu > (afterPool[tid]?.cpu ?? 0));
  if (moved && i >= 2) break;
}
process.stdout.write(JSON.stringify({ pid: process.pid, result, before, afterPool, afterJit, sink }));
`;

interface Sample {
  cpu: number;
  nice: number;
}
type Threads = Record<string, Sample>;

describe.runIf(process.platform === 'linux')('lowerV8ThreadPriority in a Node process', () => {
  it('lowers the compiler threads to nice 19 and leaves the main and libuv threads at 0', () => {
    // Plain JavaScript in the child: a loader (tsx) would add a thread of its own.
    const dir = mkdtempSync(join(tmpdir(), 'aa-v8-threads-'));
    let out: string;
    try {
      const js = ts.transpileModule(readFileSync(SOURCE, 'utf8'), {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      }).outputText;
      writeFileSync(join(dir, 'v8-threads.mjs'), js);
      writeFileSync(join(dir, 'child.mjs'), CHILD);
      out = execFileSync(process.execPath, [join(dir, 'child.mjs')], {
        encoding: 'utf8',
        timeout: 60_000,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const r = JSON.parse(out) as {
      pid: number;
      result: { lowered: number[]; skipped?: string };
      before: Threads;
      afterPool: Threads;
      afterJit: Threads;
    };
    expect(r.result.skipped).toBeUndefined();
    expect(r.result.lowered).toHaveLength(5);
    const lowered = new Set(r.result.lowered.map(String));
    expect(lowered.has(String(r.pid))).toBe(false);
    for (const [tid, s] of Object.entries(r.afterJit))
      expect([tid, s.nice]).toEqual([tid, lowered.has(tid) ? 19 : 0]);

    const busy = (from: Threads, to: Threads) =>
      Object.keys(to).filter(
        (tid) => tid !== String(r.pid) && to[tid]!.cpu > (from[tid]?.cpu ?? 0),
      );
    // pbkdf2 ran on libuv's pool: none of those threads was lowered
    const pool = busy(r.before, r.afterPool);
    expect(pool.length).toBeGreaterThan(0);
    for (const tid of pool) expect(lowered.has(tid)).toBe(false);
    // TurboFan compiled on the lowered threads: they, and only they, did the background work
    const jit = busy(r.afterPool, r.afterJit);
    expect(jit.length).toBeGreaterThan(0);
    const report = (tids: string[]) =>
      tids.map(
        (tid) => `${Number(tid) - r.pid}: ${r.afterPool[tid]?.cpu} -> ${r.afterJit[tid]!.cpu}`,
      );
    expect(report(jit.filter((tid) => !lowered.has(tid)))).toEqual([]);
  });
});
