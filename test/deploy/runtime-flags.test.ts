// The V8 flags agent-authz runs with are set in three places that cannot share a file: the image's
// ENTRYPOINT, `make run` and the benchmark (which must measure what ships). They must agree, and
// every flag must be one this Node accepts (a misspelt V8 flag would stop the server starting).
import { execFileSync } from 'node:child_process';
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
});
