// The admin HTTP listener (node:http, JSON in and out): authenticate, route, read a bounded JSON
// body, call the RegistryService, answer. Errors become `{"error": <code>, ...}` with the code's
// status; request bodies and credentials are never logged or echoed.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Auditor } from '../audit/types.js';
import type { Logger } from '../observability/logger.js';
import type { RegistryStore } from '../registry/registry.js';
import { AdminAuthenticator } from './admin-auth.js';
import { AdminError, toAdminError } from './admin-error.js';
import { allowedMethods, matchRoute } from './admin-routes.js';
import { RegistryService } from './registry-service.js';

export const MAX_BODY_BYTES = 1024 * 1024;

export interface AdminServerOptions {
  readonly store: RegistryStore;
  readonly auditor?: Auditor | undefined;
  readonly logger?: Logger | undefined;
  readonly bootstrapDigest?: string | undefined;
  readonly bootstrapKeyId?: string | undefined;
  readonly maxBodyBytes?: number;
}

export function createAdminServer(opts: AdminServerOptions): Server {
  const svc = new RegistryService(opts.store, opts.auditor);
  const auth = new AdminAuthenticator(opts.store, {
    bootstrapDigest: opts.bootstrapDigest,
    bootstrapKeyId: opts.bootstrapKeyId,
  });
  const limit = opts.maxBodyBytes ?? MAX_BODY_BYTES;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://admin.invalid');
    // Authenticate before anything else: an anonymous caller learns nothing, not even routes.
    const actor = await auth.authenticate(req.headers);
    const { route, params } = matchRoute(req.method ?? 'GET', url.pathname);
    const body = route.hasBody ? await readJson(req, limit) : undefined;
    const result = await route.handle({ params, query: url.searchParams, body, actor, svc });
    send(res, result.status, result.body);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const e = toAdminError(err);
      if (e.code === 'internal')
        opts.logger?.error({ err: String(err), path: req.url }, 'admin request failed');
      if (e.code === 'method_not_allowed')
        res.setHeader(
          'allow',
          allowedMethods(new URL(req.url ?? '/', 'http://x').pathname).join(', '),
        );
      if (e.code === 'unauthorized')
        res.setHeader('www-authenticate', 'Bearer realm="agent-authz-admin"');
      // Stop reading an oversized body, but let the 413 reach the client first.
      if (e.code === 'payload_too_large') res.setHeader('connection', 'close');
      send(res, e.status, e.toJSON());
    });
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  return server;
}

function send(res: ServerResponse, status: number, body?: unknown): void {
  if (res.headersSent) return;
  res.setHeader('cache-control', 'no-store');
  if (body === undefined) {
    res.writeHead(status).end();
    return;
  }
  const text = JSON.stringify(body);
  res
    .writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
    })
    .end(text);
}

/** The JSON body (undefined when empty), refusing non-JSON content types and oversized bodies. */
async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const type = req.headers['content-type'];
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge(limit);
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  if (type === undefined || !/^application\/(merge-patch\+)?json\s*(;|$)/i.test(type))
    throw new AdminError('unsupported_media_type', 'send the body as application/json');
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new AdminError('invalid_request', 'the body is not valid JSON', ['body: not valid JSON']);
  }
}

function tooLarge(limit: number): AdminError {
  return new AdminError('payload_too_large', `the body exceeds ${limit} bytes`);
}
