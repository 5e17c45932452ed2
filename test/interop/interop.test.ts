// Independent gRPC stacks against the real server: grpc-go, gRPC C-core (the stack of Envoy's
// Google gRPC client), grpc-js, and nghttp2's nghttp and h2load. Every CheckRequest is encoded and
// every answer decoded with Envoy's official protos, so nothing here trusts the project's own.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  OfficialCheckResponse,
  encodeOfficialRequest,
  reasonOf,
  setHeaders,
  type DecodedResponse,
} from '../helpers/official-envoy.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { CLIENTS, type CallSpec, type RunOutput } from './clients.js';
import { h2loadChecks, nghttpCheck } from './nghttp2-tools.js';
import { startTcpProbe } from './tcp-probe.js';
import { SIGTERM_CALLS, sigtermRound } from './sigterm-round.js';
import { requireNghttp2 } from './tools.js';

const ALPHA = encodeOfficialRequest({ principal: 'spiffe://example.org/agents/alpha' });
const GAMMA = encodeOfficialRequest({ principal: 'spiffe://example.org/agents/gamma' });
const LARGE = encodeOfficialRequest({
  principal: 'spiffe://example.org/agents/alpha',
  headers: { 'x-large': 'x'.repeat(64 * 1024) },
});
const BIG_METADATA = { 'x-big-metadata': 'm'.repeat(60 * 1024) };
const SERVER = { registry_file: 'examples/registry.yaml', spiffe_trust_domains: 'example.org' };

function decode(bytes: Uint8Array): DecodedResponse {
  const T = OfficialCheckResponse();
  return T.toObject(T.decode(bytes), { defaults: false }) as DecodedResponse;
}

/** Every call answered with gRPC OK and a CheckResponse; the decoded answers, in call order. */
function answers(out: RunOutput, count: number): DecodedResponse[] {
  expect(out.results).toHaveLength(count);
  const failed = out.results.filter((r) => r.code !== 0);
  expect(failed, `${out.stack}: calls failed`).toEqual([]);
  return out.results.map((r) => decode(r.response));
}

function expectAllowedAlpha(res: DecodedResponse): void {
  expect(reasonOf(res)).toBe('allowed');
  expect(setHeaders(res)['x-agent-id']).toBe('alpha');
}

describe.each(CLIENTS)('$name against the server', (client) => {
  let srv: TestServer;
  beforeAll(async () => {
    await client.prepare();
    srv = await startTestServer(SERVER);
  }, 300_000);
  afterAll(async () => {
    await srv?.stop();
  });

  it('allow, deny, and an empty CheckRequest (a deny with a reason, gRPC OK)', async () => {
    const out = await client.run({
      target: srv.address,
      calls: [{ request: ALPHA }, { request: GAMMA }, { request: new Uint8Array(0) }],
    });
    const [allow, deny, empty] = answers(out, 3);
    expectAllowedAlpha(allow!);
    expect(reasonOf(deny!)).toBe('agent_not_approved');
    expect(deny!.denied_response?.status?.code).toBe(403);
    expect(reasonOf(empty!)).toBe('no_credentials');
    expect(empty!.denied_response?.status?.code).toBe(401);
  });

  it('a 64 KB CheckRequest', async () => {
    const out = await client.run({ target: srv.address, calls: [{ request: LARGE }] });
    expectAllowedAlpha(answers(out, 1)[0]!);
  });

  it('60 KB of gRPC metadata on the call', async () => {
    const probe = await startTcpProbe(srv.app.grpcPort);
    try {
      const out = await client.run({
        target: probe.target,
        calls: [{ request: ALPHA, metadata: BIG_METADATA }],
      });
      expectAllowedAlpha(answers(out, 1)[0]!);
      // The metadata did go out: even Huffman-coded it is over 37 KB of header block.
      const request = probe.events.find((e) => e.kind === 'request');
      expect(request?.headerBytes).toBeGreaterThan(37 * 1024);
    } finally {
      await probe.close();
    }
  });

  it('200 concurrent calls on one connection', async () => {
    const probe = await startTcpProbe(srv.app.grpcPort);
    try {
      const calls: CallSpec[] = [
        { request: ALPHA, repeat: 100 },
        { request: GAMMA, repeat: 100 },
      ];
      const out = await client.run({ target: probe.target, calls, concurrency: 200 });
      const res = answers(out, 200);
      res.slice(0, 100).forEach(expectAllowedAlpha);
      for (const r of res.slice(100)) expect(reasonOf(r)).toBe('agent_not_approved');
      expect(probe.connections).toBe(1);
    } finally {
      await probe.close();
    }
  });

  it('keepalive pings on an idle connection keep it (server pings; client pings where allowed)', async () => {
    const ka = await startTestServer({
      ...SERVER,
      grpc_keepalive_time: '100ms',
      grpc_keepalive_timeout: '2s',
    });
    const probe = await startTcpProbe(ka.app.grpcPort);
    try {
      // Client keepalive under the server's 100 ms: C-core restarts its timer on every frame it
      // reads, and sends at most one ping a second without data, hence an idle stretch of 1.5 s.
      const out = await client.run({
        target: probe.target,
        calls: [{ request: ALPHA, repeat: 2 }],
        delayMs: 1500,
        ...(client.clientKeepalive ? { keepaliveMs: 50 } : {}),
      });
      answers(out, 2).forEach(expectAllowedAlpha);
      expect(probe.connections).toBe(1);
      expect(probe.count('server', 'goaway')).toBe(0);
      const wire = probe.events.map((e) => `${e.from}:${e.kind}`);
      const idle = wire.slice(wire.indexOf('server:answer'), wire.lastIndexOf('client:request'));
      expect(idle).toContain('server:ping');
      expect(idle).toContain('client:ack');
      if (client.clientKeepalive) {
        expect(idle).toContain('client:ping');
        expect(idle).toContain('server:ack');
      }
    } finally {
      await probe.close();
      await ka.stop();
    }
  });

  it('maximum connection age: the channel moves to new connections without failing a call', async () => {
    const aged = await startTestServer({
      ...SERVER,
      grpc_max_connection_age: '300ms',
      grpc_max_connection_age_grace: '5s',
    });
    const probe = await startTcpProbe(aged.app.grpcPort);
    try {
      const out = await client.run({
        target: probe.target,
        calls: [{ request: ALPHA, repeat: 100 }],
        concurrency: 2,
        delayMs: 40,
      });
      answers(out, 100).forEach(expectAllowedAlpha);
      expect(probe.count('server', 'goaway')).toBeGreaterThanOrEqual(1);
      expect(probe.connections).toBeGreaterThanOrEqual(2);
      if (out.dials !== undefined) expect(out.dials).toBe(probe.connections);
    } finally {
      await probe.close();
      await aged.stop();
    }
  });

  it('SIGTERM with calls in flight: every call answered, then exit 0', async () => {
    // On a starved machine the decision budget can run out before the server handles the signal;
    // such a round had no calls in flight at SIGTERM and proves nothing, so it is run again.
    for (let round = 1; ; round++) {
      const r = await sigtermRound(client);
      for (const res of answers(r.output, SIGTERM_CALLS))
        expect(['invalid_token', 'decision_timeout']).toContain(reasonOf(res));
      expect(r.exitCode).toBe(0);
      if (r.answersAfterGoaway > 0) break;
      if (round === 3) throw new Error('in 3 rounds, no call was still in flight at SIGTERM');
    }
  }, 120_000);
});

/** The server's own count of decisions with this reason, from its /metrics endpoint. */
async function decisions(srv: TestServer, reason: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${srv.app.httpPort}/metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(/^agent_authz_decisions_total\{([^}]*)\} (\d+)$/gm))
    if (m[1]!.includes(`reason="${reason}"`)) n += Number(m[2]);
  return n;
}

describe('nghttp2 tools against the server', () => {
  let srv: TestServer;
  beforeAll(async () => {
    requireNghttp2();
    srv = await startTestServer(SERVER);
  });
  afterAll(async () => {
    await srv?.stop();
  });

  it('nghttp: allow, deny, and an empty CheckRequest, grpc-status 0 in the trailers', async () => {
    const cases = [
      [ALPHA, 'allowed'],
      [GAMMA, 'agent_not_approved'],
      [new Uint8Array(0), 'no_credentials'],
    ] as const;
    for (const [request, reason] of cases) {
      const a = await nghttpCheck(srv.app.grpcPort, request);
      expect(a.status).toBe('200');
      expect(a.grpcStatus).toBe('0');
      expect(reasonOf(decode(a.message))).toBe(reason);
    }
  });

  it('nghttp: a 64 KB CheckRequest, and 60 KB of metadata', async () => {
    for (const a of [
      await nghttpCheck(srv.app.grpcPort, LARGE),
      await nghttpCheck(srv.app.grpcPort, ALPHA, BIG_METADATA),
    ]) {
      expect(a.grpcStatus).toBe('0');
      expectAllowedAlpha(decode(a.message));
    }
  });

  it('h2load: 200 concurrent streams on one connection, each one decided', async () => {
    const before = await decisions(srv, 'allowed');
    const summary = await h2loadChecks(srv.app.grpcPort, ALPHA, 200, 200);
    expect(summary).toEqual({ done: 200, succeeded: 200, failed: 0, errored: 0, status2xx: 200 });
    // h2load cannot see grpc-status: the server's own count says every stream got a decision.
    expect((await decisions(srv, 'allowed')) - before).toBe(200);
  });
});
