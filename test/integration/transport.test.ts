// The gRPC transports (node:http2, the default; h2c, our own HTTP/2; grpc-js) speak the protocol Envoy expects: a
// grpc-js client and a raw HTTP/2 client see the same answers, framing errors on Check still get a
// CheckResponse, and unknown methods get UNIMPLEMENTED.
import http2 from 'node:http2';
import { deflateSync, gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EnvoyCheckClient,
  OfficialCheckResponse,
  encodeOfficialRequest,
  reasonOf,
  setHeaders,
  type DecodedResponse,
} from '../helpers/official-envoy.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const CHECK = '/envoy.service.auth.v3.Authorization/Check';

interface RawAnswer {
  status: number;
  grpcStatus: string | undefined;
  body: Buffer;
}

function rawCall(
  port: number,
  path: string,
  body: Buffer,
  headers: Record<string, string> = {},
  method = 'POST',
  settings: http2.Settings = {},
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`, { settings });
    session.on('error', reject);
    const req = session.request({
      ':method': method,
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...headers,
    });
    let status = 0;
    let grpcStatus: string | undefined;
    const chunks: Buffer[] = [];
    req.on('response', (h) => {
      status = Number(h[':status']);
      if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
    });
    req.on('trailers', (t) => {
      if (t['grpc-status'] !== undefined) grpcStatus = String(t['grpc-status']);
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    // 'close' rather than 'end': a GET stream is ended by the client at once and emits no 'end'.
    req.on('close', () => {
      session.close();
      resolve({ status, grpcStatus, body: Buffer.concat(chunks) });
    });
    if (method === 'GET') req.end();
    else req.end(body);
  });
}

function frame(payload: Uint8Array, compressed = false): Buffer {
  const out = Buffer.alloc(5 + payload.length);
  out[0] = compressed ? 1 : 0;
  out.writeUInt32BE(payload.length, 1);
  out.set(payload, 5);
  return out;
}

function decodeAnswer(a: RawAnswer): DecodedResponse {
  const T = OfficialCheckResponse();
  return T.toObject(T.decode(a.body.subarray(5)), { defaults: false }) as DecodedResponse;
}

describe.each(['h2c', 'grpc-js'] as const)('transport %s', (transport) => {
  let srv: TestServer;
  let client: EnvoyCheckClient;
  beforeAll(async () => {
    srv = await startTestServer({
      registry_file: 'examples/registry.yaml',
      spiffe_trust_domains: 'example.org',
      grpc_transport: transport,
    });
    client = new EnvoyCheckClient(srv.address);
  });
  afterAll(async () => {
    client.close();
    await srv.stop();
  });

  it('answers a grpc-js client', async () => {
    const res = await client.check({ principal: 'spiffe://example.org/agents/alpha' });
    expect(setHeaders(res)['x-agent-id']).toBe('alpha');
    expect(reasonOf(await client.check({ principal: 'spiffe://example.org/agents/gamma' }))).toBe(
      'agent_not_approved',
    );
  });

  it('answers a raw HTTP/2 client with a framed CheckResponse and grpc-status 0 in trailers', async () => {
    const a = await rawCall(
      srv.app.grpcPort,
      '/envoy.service.auth.v3.Authorization/Check',
      frame(encodeOfficialRequest({ principal: 'spiffe://example.org/agents/beta' })),
    );
    expect(a.status).toBe(200);
    expect(a.grpcStatus).toBe('0');
    expect(setHeaders(decodeAnswer(a))['x-agent-id']).toBe('beta');
  });

  it('accepts a gzip-compressed request', async () => {
    const body = gzipSync(
      encodeOfficialRequest({ principal: 'spiffe://example.org/agents/alpha' }),
    );
    const a = await rawCall(
      srv.app.grpcPort,
      '/envoy.service.auth.v3.Authorization/Check',
      frame(body, true),
      { 'grpc-encoding': 'gzip' },
    );
    expect(a.grpcStatus).toBe('0');
    expect(setHeaders(decodeAnswer(a))['x-agent-id']).toBe('alpha');
  });

  it('answers unknown methods with UNIMPLEMENTED', async () => {
    const a = await rawCall(
      srv.app.grpcPort,
      '/envoy.service.auth.v2.Authorization/Check',
      frame(Buffer.alloc(0)),
    );
    expect(a.grpcStatus).toBe(String(grpc.status.UNIMPLEMENTED));
  });
});

describe.each(['h2c'] as const)('%s transport specifics', (transport) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer({
      registry_file: 'examples/registry.yaml',
      spiffe_trust_domains: 'example.org',
      grpc_transport: transport,
    });
  });
  afterAll(async () => {
    await srv.stop();
  });

  it('answers broken framing on Check with a malformed_request deny, not a gRPC error', async () => {
    const good = frame(encodeOfficialRequest({ principal: 'spiffe://example.org/agents/alpha' }));
    for (const bad of [
      good.subarray(0, 3),
      good.subarray(0, good.length - 1),
      Buffer.concat([good, good]),
      Buffer.from([2, 0, 0, 0, 0]),
    ]) {
      const a = await rawCall(srv.app.grpcPort, '/envoy.service.auth.v3.Authorization/Check', bad);
      expect(a.grpcStatus).toBe('0');
      const res = decodeAnswer(a);
      expect(reasonOf(res)).toBe('malformed_request');
      expect(res.denied_response?.status?.code).toBe(401);
    }
  });

  it('answers a compressed request that inflates far past its size with a malformed_request deny', async () => {
    // 4 MiB of zeros deflate to ~4 KiB: a 1 000:1 inflation bomb.
    const bomb = deflateSync(Buffer.alloc(4 * 1024 * 1024));
    const a = await rawCall(
      srv.app.grpcPort,
      '/envoy.service.auth.v3.Authorization/Check',
      frame(bomb, true),
      { 'grpc-encoding': 'deflate' },
    );
    expect(a.grpcStatus).toBe('0');
    expect(reasonOf(decodeAnswer(a))).toBe('malformed_request');
  });

  it('refuses non-POST and non-gRPC requests at the HTTP level', async () => {
    expect(
      (
        await rawCall(
          srv.app.grpcPort,
          '/envoy.service.auth.v3.Authorization/Check',
          Buffer.alloc(0),
          {},
          'GET',
        )
      ).status,
    ).toBe(405);
    expect(
      (
        await rawCall(
          srv.app.grpcPort,
          '/envoy.service.auth.v3.Authorization/Check',
          Buffer.alloc(0),
          { 'content-type': 'application/json' },
        )
      ).status,
    ).toBe(415);
  });

  it('answers a client that set SETTINGS_HEADER_TABLE_SIZE to 0 (its decoder insists on a size update)', async () => {
    const body = frame(encodeOfficialRequest({ principal: 'spiffe://example.org/agents/alpha' }));
    for (let i = 0; i < 3; i++) {
      const a = await rawCall(srv.app.grpcPort, CHECK, body, {}, 'POST', { headerTableSize: 0 });
      expect(a.grpcStatus).toBe('0');
      expect(reasonOf(decodeAnswer(a))).toBe('allowed');
    }
  });

  it('answers concurrent requests that together exceed the connection window on one connection', async () => {
    // Eight 3 MB checks at once (24 MB against a 16 MiB connection window), then a small one.
    const big = encodeOfficialRequest({
      principal: 'spiffe://example.org/agents/alpha',
      headers: { 'x-large': 'x'.repeat(3_000_000) },
    });
    const session = http2.connect(`http://127.0.0.1:${srv.app.grpcPort}`);
    const call = (body: Buffer) =>
      new Promise<{ grpcStatus: string | undefined; body: Buffer }>((resolve, reject) => {
        const req = session.request({
          ':method': 'POST',
          ':path': CHECK,
          'content-type': 'application/grpc',
          te: 'trailers',
        });
        const chunks: Buffer[] = [];
        let grpcStatus: string | undefined;
        req.on('trailers', (t) => (grpcStatus = String(t['grpc-status'])));
        req.on('response', (h) => {
          if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
        });
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('error', reject);
        req.on('close', () => resolve({ grpcStatus, body: Buffer.concat(chunks) }));
        req.end(body);
      });
    try {
      const answers = await Promise.all(Array.from({ length: 8 }, () => call(frame(big))));
      for (const a of answers) {
        expect(a.grpcStatus).toBe('0');
        expect(reasonOf(decodeAnswer({ status: 200, ...a }))).not.toBe('?');
      }
      const small = await call(
        frame(encodeOfficialRequest({ principal: 'spiffe://example.org/agents/alpha' })),
      );
      expect(reasonOf(decodeAnswer({ status: 200, ...small }))).toBe('allowed');
    } finally {
      session.close();
    }
  });
});
