// nghttp2's command-line clients as gRPC callers: nghttp for one call whose answer is read back
// from its verbose output, h2load for many concurrent streams on one connection.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CHECK = '/envoy.service.auth.v3.Authorization/Check';
const GRPC_HEADERS = ['content-type: application/grpc', 'te: trailers'];

function grpcFrame(message: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

function run(cmd: string, args: string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024, timeout: 60_000 },
      (err, stdout, stderr) =>
        err
          ? reject(new Error(`${cmd} failed: ${err.message}\n${stderr.toString()}`))
          : resolve(stdout),
    );
  });
}

async function withBodyFile<T>(message: Uint8Array, use: (path: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'agent-authz-interop-'));
  try {
    const path = join(dir, 'request.bin');
    writeFileSync(path, grpcFrame(message));
    return await use(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface NghttpAnswer {
  readonly status: string | undefined;
  /** From the trailers, or from the headers of a trailers-only answer. */
  readonly grpcStatus: string | undefined;
  /** The gRPC message payload, length prefix removed. */
  readonly message: Buffer;
}

/**
 * One Check call. `-v` prints each received header field as `recv (stream_id=N) name: value`, and
 * without `-n` nghttp writes a DATA frame's payload to stdout just before its `recv DATA frame
 * <length=L, ...>` line, so the body is the L bytes in front of each such line.
 */
export async function nghttpCheck(
  port: number,
  message: Uint8Array,
  headers: Record<string, string> = {},
): Promise<NghttpAnswer> {
  const out = await withBodyFile(message, (file) =>
    run('nghttp', [
      '-v',
      '-t',
      '10s',
      '-d',
      file,
      ...[...GRPC_HEADERS, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)].flatMap(
        (h) => ['-H', h],
      ),
      `http://127.0.0.1:${port}${CHECK}`,
    ]),
  );
  const text = out.toString('latin1');
  const field = (name: string) =>
    new RegExp(`recv \\(stream_id=\\d+\\) ${name}: ([^\\n]*)`).exec(text)?.[1];
  const parts: Buffer[] = [];
  for (const m of text.matchAll(
    /\[\s*[\d.]+\] recv DATA frame <length=(\d+), flags=0x([0-9a-f]+), stream_id=\d+>/g,
  )) {
    const length = Number(m[1]);
    if ((parseInt(m[2]!, 16) & 0x8) !== 0) throw new Error('nghttp: padded DATA is not parsed');
    parts.push(out.subarray(m.index - length, m.index));
  }
  const body = Buffer.concat(parts);
  if (body.length > 0 && body.length !== 5 + body.readUInt32BE(1))
    throw new Error(`nghttp: body of ${body.length} bytes is not one gRPC message`);
  return { status: field(':status'), grpcStatus: field('grpc-status'), message: body.subarray(5) };
}

export interface H2loadSummary {
  readonly done: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly errored: number;
  readonly status2xx: number;
}

/** `requests` calls over one connection with up to `streams` of them in flight at once. */
export async function h2loadChecks(
  port: number,
  message: Uint8Array,
  requests: number,
  streams: number,
): Promise<H2loadSummary> {
  const out = await withBodyFile(message, (file) =>
    run('h2load', [
      `-n${requests}`,
      '-c1',
      `-m${streams}`,
      '-d',
      file,
      ...GRPC_HEADERS.flatMap((h) => ['-H', h]),
      `http://127.0.0.1:${port}${CHECK}`,
    ]),
  );
  const text = out.toString();
  const req =
    /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(
      text,
    );
  const codes = /status codes: (\d+) 2xx/.exec(text);
  if (req === null || codes === null) throw new Error(`h2load: unexpected output\n${text}`);
  return {
    done: Number(req[3]),
    succeeded: Number(req[4]),
    failed: Number(req[5]),
    errored: Number(req[6]),
    status2xx: Number(codes[1]),
  };
}
