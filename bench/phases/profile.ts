// `BENCH_ONLY=profile BENCH_PROFILE_PATH=spiffe make bench`: one agent-authz under `node --cpu-prof`
// saturated by h2load on one path; prints the hottest functions by self time and keeps the
// .cpuprofile (open it in Chrome DevTools or speedscope).
import { readdirSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { grpcFrame, type Fixtures, type PathName } from '../fixtures.js';
import { h2load, startAuthz, writeFrames } from '../lib/servers.js';
import { ROOT } from '../lib/procs.js';
import { EXPECTED_AGENT, sanity } from './throughput.js';
import type { Context } from '../context.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export async function profile(ctx: Context, f: Fixtures): Promise<string> {
  const path = (process.env.BENCH_PROFILE_PATH ?? 'spiffe') as PathName;
  const dir = join(ROOT, 'bench/results/profiles', `${path}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  const file = writeFrames(ctx.tmp, `prof-${path}`, [grpcFrame(f.bodies[path])]);
  const authz = await startAuthz('agent-authz-prof', {
    env: ctx.authzEnv,
    cpu: ctx.serverCpu,
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`],
  });
  try {
    await sanity(authz.grpcPort, f.bodies[path], EXPECTED_AGENT[path]);
    const r = await h2load(authz.grpcPort, file, ctx.seconds);
    ctx.log(`  profiled ${path}: ${r.req_per_s.toFixed(0)}/s under the profiler`);
  } finally {
    await authz.stop();
  }
  const prof = readdirSync(dir).find((n) => n.endsWith('.cpuprofile'));
  if (prof === undefined) return `no profile written in ${dir}`;
  return `${join(dir, prof)}\n${summarize(JSON.parse(readFileSync(join(dir, prof), 'utf8')) as CpuProfile)}`;
}

/** Self time per function (top 40) and per source file (top 15). */
export function summarize(p: CpuProfile): string {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  for (const [id, t] of self) {
    const c = byId.get(id)!.callFrame;
    const url = c.url.replace(/^file:\/\//, '').replace(ROOT, '');
    const k = `${c.functionName || '(anonymous)'}  ${url}:${c.lineNumber + 1}`;
    fn.set(k, (fn.get(k) ?? 0) + t);
    const fk = url === '' ? c.functionName : url.replace(/.*node_modules\//, 'nm/');
    file.set(fk, (file.get(fk) ?? 0) + t);
  }
  // Inclusive time of the project's own functions (a recursive function would count twice).
  const incl = new Map<string, number>();
  const walk = (id: number): number => {
    const n = byId.get(id)!;
    let t = self.get(id) ?? 0;
    for (const c of n.children ?? []) t += walk(c);
    const url = n.callFrame.url;
    if (url.includes('/dist/src/') || url.includes('/src/')) {
      const k = `${n.callFrame.functionName || '(anonymous)'}  ${url.replace(/^file:\/\//, '').replace(ROOT, '')}:${n.callFrame.lineNumber + 1}`;
      incl.set(k, (incl.get(k) ?? 0) + t);
    }
    return t;
  };
  walk(p.nodes[0]!.id);
  const top = (m: Map<string, number>, n: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, t]) => `${((100 * t) / total).toFixed(1).padStart(5)}%  ${k}`);
  return [
    'self time by function:',
    ...top(fn, 40),
    '',
    'self time by file:',
    ...top(file, 15),
    '',
    'inclusive time, project functions:',
    ...top(incl, 30),
  ].join('\n');
}
