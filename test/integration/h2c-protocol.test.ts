// The h2c transport at the frame level, with a raw TCP client: what the interop tests (grpc-js and
// node:http2 clients, nghttp2 in the bench) do not reach — CONTINUATION, padding, flow control
// that holds a response back, PING, connection errors answered with GOAWAY — and random frames
// that must never take the server down.
import net from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HeaderDecoder } from '../../src/server/h2c/hpack-decoder.js';
import {
  EnvoyCheckClient,
  OfficialCheckResponse,
  encodeOfficialRequest,
  reasonOf,
  type DecodedResponse,
} from '../helpers/official-envoy.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { frame, grpcMessage } from '../helpers/h2-frames.js';
import { RawClient, requestBlock } from '../helpers/h2-raw-client.js';
import { decodeFields } from '../helpers/hpack.js';

const ALPHA = 'spiffe://example.org/agents/alpha';

function decodeCheck(data: Buffer): DecodedResponse {
  const T = OfficialCheckResponse();
  return T.toObject(T.decode(data.subarray(5)), { defaults: false }) as DecodedResponse;
}

describe('h2c transport at the frame level', () => {
  let srv: TestServer;
  let port: number;
  beforeAll(async () => {
    srv = await startTestServer({
      registry_file: 'examples/registry.yaml',
      spiffe_trust_domains: 'example.org',
      grpc_transport: 'h2c',
    });
    port = srv.app.grpcPort;
  });
  afterAll(async () => {
    await srv.stop();
  });

  it('answers a Check whose headers span HEADERS + CONTINUATION and whose body is padded DATA in two frames', async () => {
    const c = await RawClient.connect(port);
    const block = requestBlock();
    const body = grpcMessage(encodeOfficialRequest({ principal: ALPHA }));
    const half = body.length >> 1;
    // PADDED DATA: pad length 3, then data, then 3 bytes of padding.
    const padded = Buffer.concat([Buffer.from([3]), body.subarray(half), Buffer.alloc(3)]);
    c.send(
      frame(1, 0, 1, block.subarray(0, 10)), // HEADERS without END_HEADERS
      frame(9, 0x4, 1, block.subarray(10)), // CONTINUATION with END_HEADERS
      frame(0, 0, 1, body.subarray(0, half)),
      frame(0, 0x1 | 0x8, 1, padded), // END_STREAM | PADDED
    );
    const trailers = await c.waitFor((f) => f.type === 1 && f.id === 1 && (f.flags & 1) === 1);
    expect(trailers).toBeDefined();
    const decoder = new HeaderDecoder();
    const headerFrames = c.frames.filter((f) => f.type === 1 && f.id === 1);
    expect(decodeFields(decoder, headerFrames[0]!.payload)).toEqual([
      [':status', '200'],
      ['content-type', 'application/grpc'],
    ]);
    expect(decodeFields(decoder, trailers!.payload)).toEqual([['grpc-status', '0']]);
    const data = Buffer.concat(
      c.frames.filter((f) => f.type === 0 && f.id === 1).map((f) => f.payload),
    );
    expect(reasonOf(decodeCheck(data))).toBe('allowed');
    c.close();
  });

  it('answers PING with a PING ACK carrying the same payload', async () => {
    const c = await RawClient.connect(port);
    const opaque = Buffer.from('abcdefgh');
    c.send(frame(6, 0, 0, opaque));
    const ack = await c.waitFor((f) => f.type === 6 && (f.flags & 1) === 1);
    expect(ack?.payload).toEqual(opaque);
    c.close();
  });

  it('holds response DATA back while the client window is 0 and sends it after WINDOW_UPDATE', async () => {
    const c = await RawClient.connect(port, [[0x4, 0]]); // SETTINGS_INITIAL_WINDOW_SIZE = 0
    await c.waitFor((f) => f.type === 4 && (f.flags & 1) === 1); // our SETTINGS were acknowledged
    const body = grpcMessage(encodeOfficialRequest({ principal: ALPHA }));
    c.send(frame(1, 0x4, 1, requestBlock()), frame(0, 0x1, 1, body));
    const headers = await c.waitFor((f) => f.type === 1 && f.id === 1);
    expect(headers).toBeDefined();
    expect(await c.waitFor((f) => f.type === 0 && f.id === 1, 150)).toBeUndefined();
    const inc = Buffer.alloc(4);
    inc.writeUInt32BE(1 << 20);
    c.send(frame(8, 0, 1, inc));
    const end = await c.waitFor((f) => f.type === 1 && f.id === 1 && (f.flags & 1) === 1);
    expect(end).toBeDefined();
    const data = Buffer.concat(
      c.frames.filter((f) => f.type === 0 && f.id === 1).map((f) => f.payload),
    );
    expect(reasonOf(decodeCheck(data))).toBe('allowed');
    c.close();
  });

  it('answers an unknown path with grpc-status 12 in a trailers-only response', async () => {
    const c = await RawClient.connect(port);
    c.send(frame(1, 0x4 | 0x1, 1, requestBlock('/nope.Service/Method')));
    const h = await c.waitFor((f) => f.type === 1 && f.id === 1);
    expect(h!.flags & 1).toBe(1);
    expect(decodeFields(new HeaderDecoder(), h!.payload)).toContainEqual(['grpc-status', '12']);
    c.close();
  });

  const errors: [string, (c: RawClient) => void, number][] = [
    ['DATA on stream 0', (c) => c.send(frame(0, 0, 0, Buffer.from('x'))), 1],
    ['HEADERS on an even stream id', (c) => c.send(frame(1, 0x5, 2, requestBlock())), 1],
    [
      'a frame larger than SETTINGS_MAX_FRAME_SIZE',
      (c) => c.send(frame(0, 0, 1, Buffer.alloc(16_385))),
      6,
    ],
    ['an undecodable header block', (c) => c.send(frame(1, 0x5, 1, Buffer.from([0x80]))), 9],
    [
      'a window increment past 2^31-1',
      (c) => c.send(frame(8, 0, 0, Buffer.from([0x7f, 0xff, 0xff, 0xff]))),
      3,
    ],
    ['CONTINUATION without HEADERS', (c) => c.send(frame(9, 0x4, 1, requestBlock())), 1],
    [
      'a flood of empty CONTINUATION frames',
      (c) =>
        c.send(
          frame(1, 0, 1, requestBlock()),
          ...Array.from({ length: 200 }, () => frame(9, 0, 1)),
        ),
      11,
    ],
    ['a GOAWAY shorter than 8 bytes', (c) => c.send(frame(7, 0, 0, Buffer.alloc(4))), 6],
  ];
  it.each(errors)('ends the connection with GOAWAY for %s', async (_name, act, code) => {
    const c = await RawClient.connect(port);
    await c.waitFor((f) => f.type === 4 && (f.flags & 1) === 1);
    act(c);
    const goaway = await c.waitFor((f) => f.type === 7);
    expect(goaway?.payload.readUInt32BE(4)).toBe(code);
    expect(await c.waitClosed()).toBe(true);
  });

  it('closes a connection that does not start with the HTTP/2 preface', async () => {
    const socket = net.connect(port, '127.0.0.1');
    const closed = new Promise<Buffer>((resolve) => {
      const got: Buffer[] = [];
      socket.on('data', (d: Buffer) => got.push(d));
      socket.on('close', () => resolve(Buffer.concat(got)));
      socket.on('error', () => undefined);
    });
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    // Our SETTINGS may already be on the wire; no HTTP/1.1 answer and no stream follow.
    const got = await closed;
    expect(got.includes(Buffer.from('HTTP/1.1'))).toBe(false);
  });

  it('survives random frames: every connection ends in an answer, a GOAWAY or a close, and the server keeps serving', async () => {
    const anyFrame = fc.record({
      type: fc.integer({ min: 0, max: 12 }),
      flags: fc.integer({ min: 0, max: 255 }),
      id: fc.oneof(fc.constant(0), fc.constant(1), fc.constant(3), fc.integer({ min: 0, max: 9 })),
      payload: fc.uint8Array({ maxLength: 64 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(anyFrame, { minLength: 1, maxLength: 8 }), async (frames) => {
        const c = await RawClient.connect(port);
        c.send(...frames.map((f) => frame(f.type, f.flags, f.id, f.payload)));
        c.send(frame(6, 0, 0, Buffer.from('12345678'))); // a PING: answered unless the connection died
        const answered = await c.waitFor((f) => f.type === 6 && (f.flags & 1) === 1, 1000);
        const goaway = c.frames.find((f) => f.type === 7);
        const closed = c.closed;
        c.close();
        return answered !== undefined || goaway !== undefined || closed;
      }),
      { numRuns: 150 },
    );
    const client = new EnvoyCheckClient(srv.address);
    try {
      expect(reasonOf(await client.check({ principal: ALPHA }))).toBe('allowed');
    } finally {
      client.close();
    }
  });

  it('answers a request larger than the message limit with a malformed_request deny', async () => {
    const c = await RawClient.connect(port);
    const big = Buffer.alloc(4 * 1024 * 1024 + 64 * 1024);
    big.writeUInt32BE(big.length - 5, 1);
    c.send(frame(1, 0x4, 1, requestBlock()));
    for (let at = 0; at < big.length; at += 16_384) {
      const end = at + 16_384 >= big.length;
      c.send(frame(0, end ? 1 : 0, 1, big.subarray(at, at + 16_384)));
    }
    const end = await c.waitFor((f) => f.type === 1 && f.id === 1 && (f.flags & 1) === 1, 10_000);
    expect(end).toBeDefined();
    const data = Buffer.concat(
      c.frames.filter((f) => f.type === 0 && f.id === 1).map((f) => f.payload),
    );
    expect(reasonOf(decodeCheck(data))).toBe('malformed_request');
    c.close();
  });
});
