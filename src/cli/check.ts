// `agent-authz check`: sends one CheckRequest to a running server and prints the decision, the
// reason and the headers — the operator's "why was my agent denied?" tool. Exit 0 on allow.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { messageType } from '../proto/schema.js';
import { CHECK_PATH } from '../server/check-route.js';

export const CHECK_USAGE = `usage: agent-authz check [--server host:port] [--principal SPIFFE_ID] [--cert PEM_FILE]
                         [--header name=value ...] [--path /p] [--method GET] [--host h]
                         [--context key=value ...] [--json]`;

export interface CheckRequestSpec {
  principal?: string;
  certificatePem?: string;
  headers?: Record<string, string>;
  path?: string;
  method?: string;
  host?: string;
  contextExtensions?: Record<string, string>;
}

/** Builds the CheckRequest as Envoy would: lower-cased headers, pseudo-headers, URL-encoded PEM. */
export function buildCheckRequest(spec: CheckRequestSpec): Uint8Array {
  const CheckRequest = messageType('envoy.service.auth.v3.CheckRequest');
  const path = spec.path ?? '/';
  const method = spec.method ?? 'GET';
  const host = spec.host ?? 'service.local';
  const headers: Record<string, string> = {
    ':authority': host,
    ':method': method,
    ':path': path,
    ':scheme': 'https',
  };
  for (const [k, v] of Object.entries(spec.headers ?? {})) headers[k.toLowerCase()] = v;
  const source: Record<string, unknown> = {};
  if (spec.principal !== undefined) source.principal = spec.principal;
  if (spec.certificatePem !== undefined) source.certificate = envoyUrlEncode(spec.certificatePem);
  const msg = CheckRequest.fromObject({
    attributes: {
      source,
      request: {
        http: { id: '1', method, path, host, scheme: 'https', protocol: 'HTTP/1.1', headers },
      },
      contextExtensions: spec.contextExtensions ?? {},
    },
  });
  return CheckRequest.encode(msg).finish();
}

/** Envoy's exact peer-certificate encoding: newline, space, '+', '/', '=' percent-encoded. */
export function envoyUrlEncode(pem: string): string {
  return pem.replace(
    /[\n +/=]/g,
    (c) => ({ '\n': '%0A', ' ': '%20', '+': '%2B', '/': '%2F', '=': '%3D' })[c]!,
  );
}

export function sendCheck(
  server: string,
  body: Uint8Array,
  timeoutMs = 2000,
): Promise<Record<string, unknown>> {
  const CheckResponse = messageType('envoy.service.auth.v3.CheckResponse');
  const client = new grpc.Client(server, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      CHECK_PATH,
      (b: Uint8Array) => Buffer.from(b),
      (b: Buffer) => CheckResponse.toObject(CheckResponse.decode(b), { defaults: false }),
      body,
      { deadline: Date.now() + timeoutMs },
      (err, res) => {
        client.close();
        if (err) reject(err);
        else resolve(res as Record<string, unknown>);
      },
    );
  });
}

export async function checkCommand(argv: string[], out: NodeJS.WritableStream): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      server: { type: 'string', default: '127.0.0.1:9191' },
      principal: { type: 'string' },
      cert: { type: 'string' },
      header: { type: 'string', multiple: true },
      context: { type: 'string', multiple: true },
      path: { type: 'string' },
      method: { type: 'string' },
      host: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const pairs = (list: string[] | undefined) =>
    Object.fromEntries(
      (list ?? []).map((kv) => {
        const i = kv.indexOf('=');
        if (i <= 0) throw new Error(`expected name=value, got "${kv}"`);
        return [kv.slice(0, i), kv.slice(i + 1)];
      }),
    );
  const spec: CheckRequestSpec = {
    headers: pairs(values.header),
    contextExtensions: pairs(values.context),
  };
  if (values.principal !== undefined) spec.principal = values.principal;
  if (values.cert !== undefined) spec.certificatePem = readFileSync(values.cert, 'utf8');
  if (values.path !== undefined) spec.path = values.path;
  if (values.method !== undefined) spec.method = values.method;
  if (values.host !== undefined) spec.host = values.host;
  const res = await sendCheck(values.server!, buildCheckRequest(spec));
  const status = (res.status as { code?: number } | undefined)?.code ?? 0;
  if (values.json) {
    out.write(JSON.stringify(res, null, 2) + '\n');
    return status === 0 ? 0 : 1;
  }
  const hv = (list: unknown) =>
    ((list as { header: { key: string; value: string } }[] | undefined) ?? []).map(
      (h) => `  ${h.header.key}: ${h.header.value}`,
    );
  if (status === 0) {
    const ok = (res.okResponse ?? {}) as { headers?: unknown; headersToRemove?: string[] };
    out.write(`ALLOW\n${hv(ok.headers).join('\n')}\n`);
    if (ok.headersToRemove?.length) out.write(`  (removes: ${ok.headersToRemove.join(', ')})\n`);
    return 0;
  }
  const d = (res.deniedResponse ?? {}) as {
    status?: { code?: string | number };
    headers?: unknown;
    body?: string;
  };
  const reason = (JSON.parse(d.body ?? '{}') as { reason?: string }).reason ?? 'unknown';
  out.write(
    `DENY ${reason} (http ${String(d.status?.code)}, grpc ${status})\n${hv(d.headers).join('\n')}\n  body: ${d.body ?? ''}\n`,
  );
  return 1;
}
