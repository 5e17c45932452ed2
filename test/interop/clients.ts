// Independent gRPC client stacks behind one contract: a run of Check calls described as data, its
// per-call gRPC status and raw response bytes back. The stacks only move bytes; the tests encode
// and decode with Envoy's official protos.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { ensureGoClient, requireGo, requirePythonGrpc } from './tools.js';

const CHECK = '/envoy.service.auth.v3.Authorization/Check';
const PYTHON = '/usr/bin/python3';
const PYTHON_CLIENT = fileURLToPath(new URL('./python-client.py', import.meta.url));

export interface CallSpec {
  readonly request: Uint8Array;
  readonly metadata?: Record<string, string>;
  readonly repeat?: number;
}

export interface RunSpec {
  readonly target: string;
  readonly calls: readonly CallSpec[];
  /** Calls in flight at once, all on the client's one channel. */
  readonly concurrency?: number;
  /** A worker's pause between two of its calls. */
  readonly delayMs?: number;
  readonly timeoutMs?: number;
  /** Client-side keepalive ping interval, for the stacks that allow a short one. */
  readonly keepaliveMs?: number;
}

export interface CallResult {
  readonly index: number;
  readonly code: number;
  readonly message: string;
  readonly response: Uint8Array;
}

export interface RunOutput {
  readonly stack: string;
  readonly results: CallResult[];
  /** TCP connections the channel opened, where the stack lets a client count them (grpc-go). */
  readonly dials?: number;
}

export interface InteropClient {
  readonly name: string;
  /** False where the stack refuses short client keepalive intervals (grpc-go: 10 s minimum). */
  readonly clientKeepalive: boolean;
  /** Fails, saying what to install, when the stack is missing; builds what needs building. */
  prepare(): Promise<void>;
  run(spec: RunSpec): Promise<RunOutput>;
}

interface WireResult {
  index: number;
  code: number;
  message: string;
  response: string;
}

function wireSpec(spec: RunSpec, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    target: spec.target,
    calls: spec.calls.map((c) => ({
      request: Buffer.from(c.request).toString('base64'),
      metadata: c.metadata ?? {},
      repeat: c.repeat ?? 1,
    })),
    concurrency: spec.concurrency ?? 1,
    delay_ms: spec.delayMs ?? 0,
    timeout_ms: spec.timeoutMs ?? 10_000,
    ...extra,
  });
}

function runProcess(cmd: string, args: string[], stdin: string): Promise<RunOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) {
        reject(new Error(`${cmd} exited with ${code}: ${Buffer.concat(err).toString()}`));
        return;
      }
      const parsed = JSON.parse(Buffer.concat(out).toString()) as {
        stack: string;
        results: WireResult[];
        dials?: number;
      };
      resolve({
        ...parsed,
        results: parsed.results.map((r) => ({ ...r, response: Buffer.from(r.response, 'base64') })),
      });
    });
    child.stdin.end(stdin);
  });
}

export const goClient: InteropClient = {
  name: 'grpc-go',
  clientKeepalive: false,
  prepare: async () => {
    requireGo();
    await ensureGoClient();
  },
  run: async (spec) => runProcess(await ensureGoClient(), [], wireSpec(spec)),
};

export const coreClient: InteropClient = {
  name: 'grpc-core',
  clientKeepalive: true,
  prepare: async () => requirePythonGrpc(),
  run: (spec) => {
    const options =
      spec.keepaliveMs === undefined
        ? {}
        : {
            'grpc.keepalive_time_ms': spec.keepaliveMs,
            'grpc.keepalive_timeout_ms': 2000,
            'grpc.keepalive_permit_without_calls': 1,
            // Without these two, C-core spaces pings on a connection without data by minutes
            // (it still keeps them a second apart).
            'grpc.http2.max_pings_without_data': 0,
            'grpc.http2.min_time_between_pings_ms': spec.keepaliveMs,
            // Its bandwidth probes are PINGs too; off, every PING it sends is a keepalive.
            'grpc.http2.bdp_probe': 0,
          };
    return runProcess(PYTHON, [PYTHON_CLIENT], wireSpec(spec, { options }));
  },
};

export const grpcJsClient: InteropClient = {
  name: 'grpc-js',
  clientKeepalive: true,
  prepare: async () => undefined,
  run: runGrpcJs,
};

async function runGrpcJs(spec: RunSpec): Promise<RunOutput> {
  const options: grpc.ChannelOptions =
    spec.keepaliveMs === undefined
      ? {}
      : {
          'grpc.keepalive_time_ms': spec.keepaliveMs,
          'grpc.keepalive_timeout_ms': 2000,
          'grpc.keepalive_permit_without_calls': 1,
        };
  const client = new grpc.Client(spec.target, grpc.credentials.createInsecure(), options);
  const jobs = spec.calls.flatMap((c) => Array<CallSpec>(c.repeat ?? 1).fill(c));
  const results: CallResult[] = [];
  let next = 0;
  const call = (index: number, c: CallSpec) =>
    new Promise<CallResult>((resolve) => {
      const md = new grpc.Metadata();
      for (const [k, v] of Object.entries(c.metadata ?? {})) md.set(k, v);
      client.makeUnaryRequest(
        CHECK,
        (b: Uint8Array) => Buffer.from(b),
        (b: Buffer) => b,
        c.request,
        md,
        { deadline: Date.now() + (spec.timeoutMs ?? 10_000) },
        (err, res) =>
          resolve({
            index,
            code: err ? err.code : 0,
            message: err ? err.details : '',
            response: res ?? Buffer.alloc(0),
          }),
      );
    });
  const worker = async () => {
    for (let first = true; next < jobs.length; first = false) {
      const index = next++;
      if (!first && (spec.delayMs ?? 0) > 0) await new Promise((r) => setTimeout(r, spec.delayMs));
      results[index] = await call(index, jobs[index]!);
    }
  };
  try {
    await Promise.all(Array.from({ length: spec.concurrency ?? 1 }, worker));
  } finally {
    client.close();
  }
  return { stack: `grpc-js ${grpcJsVersion()}`, results };
}

function grpcJsVersion(): string {
  return (createRequire(import.meta.url)('@grpc/grpc-js/package.json') as { version: string })
    .version;
}

export const CLIENTS: readonly InteropClient[] = [goClient, coreClient, grpcJsClient];
