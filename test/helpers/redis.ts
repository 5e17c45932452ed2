// A redis-server owned by the test (never the shared one on 6379), so fault tests can kill,
// pause and restart it.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export class TestRedis {
  private proc: ChildProcess | undefined;
  readonly dir = mkdtempSync(join(tmpdir(), 'aa-redis-'));

  private constructor(
    readonly port: number,
    private readonly extraArgs: string[],
  ) {}

  static async start(extraArgs: string[] = []): Promise<TestRedis> {
    const r = new TestRedis(await freePort(), extraArgs);
    await r.startProcess();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async startProcess(): Promise<void> {
    this.proc = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        this.dir,
        ...this.extraArgs,
      ],
      { stdio: 'ignore' },
    );
    for (let i = 0; i < 100; i++) {
      try {
        if (this.cli('PING').trim() === 'PONG') return;
      } catch {
        /* not up yet */
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server on ${this.port} did not start`);
  }

  cli(...args: string[]): string {
    // stderr is kept in the thrown error instead of printed ("Could not connect" while starting).
    return execFileSync('redis-cli', ['-p', String(this.port), ...args], {
      encoding: 'utf8',
      timeout: 5000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** SIGKILL: the server vanishes mid-traffic. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (p === undefined || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  }

  pause(): void {
    this.proc?.kill('SIGSTOP');
  }

  resume(): void {
    this.proc?.kill('SIGCONT');
  }

  /** Stops the server for good and removes its directory (kill() keeps it for a restart). */
  async stop(): Promise<void> {
    this.resume();
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Loads a registry YAML into a Redis the test owns, through the same import path as the CLI. */
export async function seedRedis(url: string, registryYaml: string): Promise<void> {
  const { RedisStore } = await import('../../src/registry/redis-store.js');
  const { parseRegistry } = await import('../../src/registry/registry-file.js');
  const seed = new RedisStore({
    url,
    commandTimeoutMs: 1000,
    prefix: 'agent-authz',
    versionPollMs: 60_000,
  });
  try {
    await seed.waitReady(5000);
    await seed.importData(parseRegistry(registryYaml), { replace: true });
  } finally {
    await seed.close();
  }
}
