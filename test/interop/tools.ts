// The external tools the interop tests drive, checked up front so a missing one fails the tests
// with a message saying what to install (a skipped interop test would prove nothing), and the
// grpc-go client binary, built once per source change.
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
const GO_SOURCE = join(REPO, 'test/interop/go-client/main.go');
const GOPATH = '/usr/share/gocode';
const GRPC_GO = join(GOPATH, 'src/google.golang.org/grpc');
const OUT_DIR = join(REPO, '.tmp/interop');

function missing(what: string, detail: string): Error {
  return new Error(
    `interop tests need ${what} (${detail}); install it with: bash scripts/ensure-test-deps.sh`,
  );
}

function runs(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore', timeout: 30_000 });
  return r.error === undefined && r.status === 0;
}

export function requireGo(): void {
  if (!runs('go', ['version'])) throw missing('Go', '`go version` failed: Debian golang-go');
  if (!existsSync(GRPC_GO))
    throw missing('grpc-go', `${GRPC_GO} not found: Debian golang-google-grpc-dev`);
}

export function requirePythonGrpc(): void {
  if (!runs('/usr/bin/python3', ['-c', 'import grpc']))
    throw missing(
      'gRPC C-core for Python',
      "/usr/bin/python3 -c 'import grpc' failed: python3-grpcio",
    );
}

export function requireNghttp2(): void {
  for (const tool of ['nghttp', 'h2load'])
    if (!runs(tool, ['--version']))
      throw missing(tool, `\`${tool} --version\` failed: nghttp2-client`);
}

let building: Promise<string> | undefined;

/** Path of the grpc-go client binary; keyed by the source's hash so an edit rebuilds it. */
export function ensureGoClient(): Promise<string> {
  building ??= buildGoClient();
  return building;
}

async function buildGoClient(): Promise<string> {
  const hash = createHash('sha256').update(readFileSync(GO_SOURCE)).digest('hex').slice(0, 16);
  const name = `go-client-${hash}`;
  const bin = join(OUT_DIR, name);
  if (existsSync(bin)) return bin;
  mkdirSync(OUT_DIR, { recursive: true });
  for (const f of readdirSync(OUT_DIR))
    if (f.startsWith('go-client-')) rmSync(join(OUT_DIR, f), { force: true });
  const env: NodeJS.ProcessEnv = { ...process.env, GO111MODULE: 'off', GOPATH, GOFLAGS: '' };
  // Without HOME, go has nowhere for its build cache.
  if (env.GOCACHE === undefined && env.HOME === undefined && env.XDG_CACHE_HOME === undefined)
    env.GOCACHE = join(OUT_DIR, 'go-cache');
  // Built under a temporary name and renamed, so an interrupted build never looks finished.
  const partial = `${bin}.${process.pid}.partial`;
  await new Promise<void>((resolve, reject) => {
    execFile(
      'go',
      ['build', '-o', partial, './test/interop/go-client'],
      { cwd: REPO, env, timeout: 300_000 },
      (err, _stdout, stderr) =>
        err ? reject(new Error(`go build failed: ${err.message}\n${stderr}`)) : resolve(),
    );
  });
  renameSync(partial, bin);
  return bin;
}
