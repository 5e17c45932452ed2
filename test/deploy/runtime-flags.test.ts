// The V8 flags agent-authz runs with are set in three places that cannot share a file: the image's
// ENTRYPOINT, `make run` and the benchmark (which must measure what ships). They must agree, and
// every flag must be one this Node accepts (a misspelt V8 flag would stop the server starting).
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RUNTIME_FLAGS } from '../../bench/lib/servers.js';

const REPO = new URL('../../', import.meta.url).pathname;

describe('runtime flags', () => {
  it('are the same in the Dockerfile, the Makefile and the bench', () => {
    const docker = /^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(`${REPO}deploy/Dockerfile`, 'utf8'));
    expect(docker).not.toBeNull();
    const entry = JSON.parse(docker![1]!) as string[];
    expect(entry.slice(1, -1)).toEqual(RUNTIME_FLAGS);
    const make = /^\tnode (.*) dist\/src\/cli\/main\.js serve$/m.exec(
      readFileSync(`${REPO}Makefile`, 'utf8'),
    );
    expect(make?.[1]?.split(' ')).toEqual(RUNTIME_FLAGS);
  });

  it('are accepted by this Node', () => {
    const out = execFileSync(process.execPath, [
      ...RUNTIME_FLAGS,
      '-e',
      'process.stdout.write("ok")',
    ]);
    expect(out.toString()).toBe('ok');
    expect(() =>
      execFileSync(process.execPath, ['--single-threaded-gcc', '-e', '0'], { stdio: 'pipe' }),
    ).toThrow();
  });

  // A set of GC flags can pass the check above and still abort the process at its first full
  // collection: without --no-cppheap-concurrent-marking (which --single-threaded-gc used to
  // imply), turning V8's concurrent marking off left cppgc's on, and Node 20 died of a failed
  // V8 CHECK ("concurrent_marking_handle_ implies ...", SIGTRAP) when incremental marking
  // finalized — in the bench, within seconds of load. This keeps ~160 MB live and replaces it,
  // yielding to the event loop, until two full collections have finished.
  it('survive full collections finalized by incremental marking', () => {
    const script = `
      const { PerformanceObserver, constants } = require('node:perf_hooks');
      let full = 0;
      new PerformanceObserver((list) => {
        for (const e of list.getEntries())
          if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) full++;
      }).observe({ entryTypes: ['gc'] });
      const ring = new Array(400);
      let i = 0;
      const until = Date.now() + 30000;
      (function step() {
        for (let k = 0; k < 4; k++)
          ring[i++ % ring.length] = Array.from({ length: 10000 }, (_, j) => ({ j }));
        if (full < 2 && Date.now() < until) setImmediate(step);
        else process.stdout.write('full collections: ' + full);
      })();`;
    const r = spawnSync(process.execPath, [...RUNTIME_FLAGS, '-e', script], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('full collections: 2');
  }, 90_000);
});
