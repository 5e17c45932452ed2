// The h2c listener's timeouts, process-wide memory budget and connection cap, on a listener of
// its own with short timeouts and small budgets, plus long random frame sequences that must
// neither take it down nor leave anything held.
import net from 'node:net';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Route } from '../../src/server/grpc/routes.js';
import type { TransportEvents } from '../../src/server/h2c/limits.js';
import type { H2cOptions, LimitName } from '../../src/server/h2c/limits.js';
import { GrpcH2cServer } from '../../src/server/h2c/server.js';
import { sharedReadsSupported } from '../../src/server/h2c/shared-reads.js';
import { PREFACE, frame, grpcMessage } from '../helpers/h2-frames.js';
import { END_HEADERS, END_STREAM, H2_ERROR, T } from '../helpers/h2-limits.js';
import { RawClient, requestBlock } from '../helpers/h2-raw-client.js';

const ECHO = '/test.Echo/Unary';
const routes = new Map<string, Route>([
  [ECHO, { kind: 'unary', handle: (m) => Buffer.from(m ?? Buffer.alloc(0)) }],
]);
const OPTS: H2cOptions = {
  maxMessageBytes: 1024 * 1024,
  maxConcurrentStreams: 100,
  keepaliveMs: 60_000,
  keepaliveTimeoutMs: 10_000,
  maxConnectionAgeMs: 600_000,
  maxConnectionAgeGraceMs: 1000,
  maxConnections: 3,
  maxHeaderListSize: 65_536,
  maxBufferedBytes: 2 * 1024 * 1024,
  resetBurst: 100,
  resetRate: 10,
  streamIdleTimeoutMs: 300,
  handshakeTimeoutMs: 300,
  headerBlockTimeoutMs: 300,
};

describe('h2c listener limits', () => {
  let server: GrpcH2cServer;
  let port: number;
  const seen: LimitName[] = [];
  const clients: RawClient[] = [];
  const events: TransportEvents = {
    limitExceeded: (limit) => seen.push(limit),
    errorSent: () => undefined,
    connectionAccepted: () => undefined,
  };
  beforeAll(async () => {
    server = new GrpcH2cServer(routes, OPTS, events);
    port = await server.listen('127.0.0.1', 0);
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    seen.length = 0;
    // Whatever the test did, once its connections are gone nothing is held for them.
    const deadline = Date.now() + 2000;
    while ((server.connectionCount > 0 || server.budget.used !== 0) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    expect(server.budget.used).toBe(0);
  });
  afterAll(() => server.close(100));

  async function connect(handshake = true, ack = true): Promise<RawClient> {
    const c = await RawClient.connect(port, [], handshake);
    clients.push(c);
    if (handshake && ack) await c.ackSettings();
    return c;
  }

  it('a connection that never sends the preface is closed with GOAWAY', async () => {
    const c = await connect(false);
    expect(await c.goawayCode()).toBe(H2_ERROR.ENHANCE_YOUR_CALM);
    expect(await c.waitClosed()).toBe(true);
    expect(seen).toEqual(['preface_timeout']);
  });

  it('a peer that never acknowledges our SETTINGS gets GOAWAY SETTINGS_TIMEOUT', async () => {
    const c = await connect(true, false);
    expect(await c.goawayCode()).toBe(H2_ERROR.SETTINGS_TIMEOUT);
    expect(await c.waitClosed()).toBe(true);
    expect(seen).toEqual(['settings_timeout']);
  });

  it('a header block left unfinished ends the connection', async () => {
    const c = await connect();
    c.send(frame(T.HEADERS, 0, 1, requestBlock(ECHO)));
    expect(await c.goawayCode()).toBe(H2_ERROR.ENHANCE_YOUR_CALM);
    expect(seen).toEqual(['header_timeout']);
  });

  it('a request that stops arriving is reset with CANCEL; the connection goes on', async () => {
    const c = await connect();
    c.send(
      frame(T.HEADERS, END_HEADERS, 1, requestBlock(ECHO)),
      frame(T.DATA, 0, 1, Buffer.from([0, 0, 0, 0, 9])),
    );
    expect(await c.resetCode(1)).toBe(H2_ERROR.CANCEL);
    c.send(frame(T.PING, 0, 0, Buffer.from('stillthr')));
    expect(await c.waitFor((f) => f.type === T.PING && (f.flags & 1) !== 0)).toBeDefined();
    expect(c.frames.some((f) => f.type === T.GOAWAY)).toBe(false);
    expect(seen).toEqual(['stream_idle_timeout']);
  });

  it('an answer the peer never gives window for is reset with CANCEL', async () => {
    const c = await RawClient.connect(port, [[0x4, 0]]);
    clients.push(c);
    await c.ackSettings();
    c.send(
      frame(T.HEADERS, END_HEADERS, 1, requestBlock(ECHO)),
      frame(T.DATA, END_STREAM, 1, grpcMessage(Buffer.from('hello'))),
    );
    expect(await c.resetCode(1)).toBe(H2_ERROR.CANCEL);
    expect(c.frames.some((f) => f.type === T.DATA && f.id === 1)).toBe(false);
    expect(seen).toEqual(['stream_idle_timeout']);
  });

  it('over the memory budget, the connection holding the most is ended and the others go on', async () => {
    const announce = (n: number) =>
      Buffer.from([0, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
    const partial = async (bytes: number, announced = 1_000_000) => {
      const c = await connect();
      c.send(
        frame(T.HEADERS, END_HEADERS, 1, requestBlock(ECHO)),
        frame(T.DATA, 0, 1, announce(announced)),
      );
      for (let sent = 0; sent < bytes; sent += 16_000)
        c.send(frame(T.DATA, 0, 1, Buffer.alloc(Math.min(16_000, bytes - sent), 1)));
      c.send(frame(T.PING, 0, 0, Buffer.alloc(8)));
      await c.waitFor((f) => f.type === T.PING && (f.flags & 1) !== 0);
      return c;
    };
    const a = await partial(600_000); // holds its whole message's size, 1 000 005
    const b = await partial(300_000); // holds less
    expect(server.budget.used).toBeGreaterThan(1_000_005 + 300_005);
    const c = await partial(700_000, 700_000); // over 2 MiB: the largest holder, a, goes
    expect(await a.goawayCode()).toBe(H2_ERROR.ENHANCE_YOUR_CALM);
    expect(await a.waitClosed()).toBe(true);
    expect(seen).toEqual(['memory_budget']);
    expect(server.budget.used).toBeGreaterThan(300_005 + 700_005);
    expect(server.budget.used).toBeLessThanOrEqual(OPTS.maxBufferedBytes);
    for (const survivor of [b, c]) {
      expect(survivor.closed).toBe(false);
      expect(survivor.frames.some((f) => f.type === T.GOAWAY)).toBe(false);
    }
  });

  it('at the connection cap, the connection idle longest makes room; with none idle, the newcomer is refused', async () => {
    const [oldest, b, c] = [await connect(), await connect(), await connect()];
    const d = await connect(); // over the cap: the oldest idle connection is closed for it
    expect(await oldest.goawayCode()).toBe(H2_ERROR.NO_ERROR);
    expect(await oldest.waitClosed()).toBe(true);
    expect(d.closed).toBe(false);
    expect(server.connectionCount).toBe(3);
    // Busy connections (a request in progress on each) are not taken from their owners.
    for (const busy of [b, c, d])
      busy.send(
        frame(T.HEADERS, END_HEADERS, 1, requestBlock(ECHO)),
        frame(T.PING, 0, 0, Buffer.alloc(8)),
      );
    for (const busy of [b, c, d])
      await busy.waitFor((f) => f.type === T.PING && (f.flags & 1) !== 0);
    const extra = await connect(false);
    expect(await extra.goawayCode()).toBe(H2_ERROR.ENHANCE_YOUR_CALM);
    expect(await extra.waitClosed()).toBe(true);
    expect(seen).toEqual(['max_connections', 'max_connections']);
    expect(server.connectionCount).toBe(3);
  });

  it('open streams count against the memory budget: a connection opening thousands is ended', async () => {
    const many = new GrpcH2cServer(
      routes,
      { ...OPTS, maxConcurrentStreams: 100_000, maxBufferedBytes: 1024 * 1024 },
      events,
    );
    const manyPort = await many.listen('127.0.0.1', 0);
    try {
      const c = await RawClient.connect(manyPort);
      clients.push(c);
      await c.ackSettings();
      c.send(
        ...Array.from({ length: 2500 }, (_, i) =>
          frame(T.HEADERS, END_HEADERS, 1 + 2 * i, requestBlock(ECHO)),
        ),
      );
      expect(await c.goawayCode()).toBe(H2_ERROR.ENHANCE_YOUR_CALM);
      expect(seen).toEqual(['memory_budget']);
      expect(await c.waitClosed()).toBe(true);
      expect(many.budget.used).toBe(0);
    } finally {
      await many.close(100);
    }
  });

  it('a SETTINGS change that would push a stream window past 2^31-1 is a connection error at once', async () => {
    const c = await connect();
    c.send(
      frame(T.HEADERS, END_HEADERS, 1, requestBlock(ECHO)),
      frame(T.WINDOW_UPDATE, 0, 1, Buffer.from([0, 0, 0x03, 0xe8])),
    );
    c.send(frame(T.SETTINGS, 0, 0, Buffer.from([0, 4, 0x7f, 0xff, 0xff, 0xff])));
    expect(await c.goawayCode()).toBe(H2_ERROR.FLOW_CONTROL_ERROR);
    expect(await c.waitClosed()).toBe(true);
  });

  it('this Node lets an accepted socket read into a shared buffer (the internals shared-reads.ts sets)', async () => {
    const probe = net.createServer();
    const accepted = new Promise<net.Socket>((resolve) => probe.once('connection', resolve));
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const addr = probe.address() as net.AddressInfo;
    const client = net.connect(addr.port, '127.0.0.1');
    const socket = await accepted;
    expect(sharedReadsSupported(socket)).toBe(true);
    socket.destroy();
    client.destroy();
    await new Promise((r) => probe.close(r));
  });

  it('property: long random frame sequences never take the listener down or leave bytes held', async () => {
    const small = fc.uint8Array({ maxLength: 64 });
    const anyFrame = fc.record({
      type: fc.integer({ min: 0, max: 11 }),
      flags: fc.integer({ min: 0, max: 255 }),
      id: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 41 })),
      payload: fc.oneof(
        { weight: 8, arbitrary: small },
        { weight: 1, arbitrary: fc.uint8Array({ minLength: 1000, maxLength: 16_384 }) },
      ),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(anyFrame, { minLength: 100, maxLength: 400 }), async (frames) => {
        const c = await RawClient.connect(port);
        // A real request first, so stream state is in play, then the random frames.
        c.send(
          frame(T.HEADERS, END_HEADERS, 1, requestBlock(ECHO)),
          frame(T.DATA, END_STREAM, 1, grpcMessage(Buffer.from('x'))),
        );
        c.send(...frames.map((f) => frame(f.type, f.flags, f.id, f.payload)));
        c.send(frame(T.PING, 0, 0, Buffer.from('12345678')));
        await c.waitFor((f) => f.type === T.PING && (f.flags & 1) !== 0, 1000);
        c.close();
        return server.budget.used >= 0;
      }),
      { numRuns: 60 },
    );
    // Still serving, on a fresh connection.
    const c = await connect();
    c.send(
      frame(T.HEADERS, END_HEADERS, 1, requestBlock(ECHO)),
      frame(T.DATA, END_STREAM, 1, grpcMessage(Buffer.from('ok'))),
    );
    const data = await c.waitFor((f) => f.type === T.DATA && f.id === 1);
    expect(data?.payload.subarray(5).toString()).toBe('ok');
    expect(PREFACE.length).toBe(24);
  });
});
