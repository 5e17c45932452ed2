// The server as operators run it (`agent-authz serve` in its own process), for what only a real
// process shows: a SIGTERM arriving while checks are in flight, and the exit code after it. Plus a
// Conjur /whoami endpoint that holds its answers, so checks stay in flight for as long as a test
// needs.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { REPO } from './tools.js';

export interface ChildServer {
  readonly grpcPort: number;
  readonly process: ChildProcess;
  /** The server's JSON log lines so far. */
  readonly logs: Record<string, unknown>[];
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** Resolves once a log line with this message has been written. */
  logged(msg: string): Promise<void>;
}

export async function startChildServer(settings: Record<string, string>): Promise<ChildServer> {
  const env: NodeJS.ProcessEnv = {};
  // The parent's own AGENT_AUTHZ_* settings (or REDIS_URL) must not leak into this server.
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('AGENT_AUTHZ_') && k !== 'REDIS_URL') env[k] = v;
  const defaults: Record<string, string> = {
    bind_address: '127.0.0.1',
    grpc_port: '0',
    http_port: '0',
    admin_enabled: 'false',
    audit_sink: 'none',
    registry_file: 'examples/registry.yaml',
    registry_watch: 'false',
    spiffe_trust_domains: 'example.org',
    log_level: 'info',
  };
  for (const [k, v] of Object.entries({ ...defaults, ...settings }))
    env[`AGENT_AUTHZ_${k.toUpperCase()}`] = v;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve'], {
    cwd: REPO,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  const waiters: { msg: string; resolve: () => void }[] = [];
  let stderr = '';
  let partial = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout!.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (line.trim() === '') continue;
      const entry = JSON.parse(line) as Record<string, unknown>;
      logs.push(entry);
      for (const w of waiters.filter((w) => w.msg === entry.msg)) w.resolve();
    }
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const logged = (msg: string) =>
    logs.some((l) => l.msg === msg)
      ? Promise.resolve()
      : new Promise<void>((resolve, reject) => {
          waiters.push({ msg, resolve });
          void exited.then((code) =>
            reject(new Error(`server exited (${code}) before logging "${msg}": ${stderr}`)),
          );
        });
  await logged('agent-authz listening');
  const listening = logs.find((l) => l.msg === 'agent-authz listening')!;
  return { grpcPort: Number(listening.grpc_port), process: child, logs, exited, logged };
}

export interface HeldConjur {
  readonly url: string;
  /** /whoami requests received so far. */
  readonly seen: number;
  /** Runs `action` as the count-th request arrives, with no delay a poll would add. */
  at(count: number, action: () => void): void;
  /** Answers every held request, and any later one at once, with 401 (an unknown token). */
  release(): void;
  close(): Promise<void>;
}

/** A Conjur whose /whoami answers only once released: the checks asking it wait until then. */
export async function startHeldConjur(): Promise<HeldConjur> {
  const held: ServerResponse[] = [];
  let released = false;
  let seen = 0;
  const actions = new Map<number, () => void>();
  const refuse = (res: ServerResponse) =>
    res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"unauthorized"}');
  const server = createServer((req, res) => {
    if (req.url !== '/whoami' || !/^Token token="/.test(req.headers.authorization ?? '')) {
      res.writeHead(404).end();
      return;
    }
    seen++;
    if (released) refuse(res);
    else held.push(res);
    actions.get(seen)?.();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get seen() {
      return seen;
    },
    at: (count, action) => actions.set(count, action),
    release() {
      released = true;
      for (const res of held.splice(0)) refuse(res);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
