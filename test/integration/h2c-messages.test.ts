// HTTP/2 message and stream-id rules (RFC 9113 §5.1, §8.1–8.3) on the h2c listener: a malformed
// request is a stream error (RST_STREAM PROTOCOL_ERROR) and the connection goes on; a reused or
// decreasing stream id, or DATA on a closed stream, is a connection error.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeHeaders } from '../../src/server/h2c/hpack-encoder.js';
import { encodeOfficialRequest } from '../helpers/official-envoy.js';
import { frame, grpcMessage } from '../helpers/h2-frames.js';
import { END_HEADERS, END_STREAM, H2_ERROR, T, errorsSent } from '../helpers/h2-limits.js';
import { CHECK, RawClient, requestBlock } from '../helpers/h2-raw-client.js';
import { literalField } from '../helpers/hpack.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const BODY = grpcMessage(encodeOfficialRequest({ principal: 'spiffe://example.org/agents/alpha' }));
const PSEUDO: [string, string][] = [
  [':method', 'POST'],
  [':scheme', 'http'],
  [':path', CHECK],
  [':authority', 'agent-authz'],
];
const GRPC: [string, string][] = [
  ['content-type', 'application/grpc'],
  ['te', 'trailers'],
];
const block = (fields: [string, string][]) => encodeHeaders(fields);

describe('h2c request messages', () => {
  let srv: TestServer;
  let port: number;
  beforeAll(async () => {
    srv = await startTestServer({
      registry_file: 'examples/registry.yaml',
      spiffe_trust_domains: 'example.org',
    });
    port = srv.app.grpcPort;
  });
  afterAll(() => srv.stop());

  async function connect(): Promise<RawClient> {
    const c = await RawClient.connect(port);
    await c.ackSettings();
    return c;
  }

  /** Stream 1 is reset with PROTOCOL_ERROR; stream 3, a good request, is still answered. */
  async function expectStreamError(c: RawClient): Promise<void> {
    expect(await c.resetCode(1)).toBe(H2_ERROR.PROTOCOL_ERROR);
    c.send(frame(T.HEADERS, END_HEADERS, 3, requestBlock()), frame(T.DATA, END_STREAM, 3, BODY));
    const end = await c.waitFor(
      (f) => f.type === T.HEADERS && f.id === 3 && (f.flags & END_STREAM) !== 0,
    );
    expect(end).toBeDefined();
    expect(c.frames.some((f) => f.type === T.GOAWAY)).toBe(false);
    c.close();
  }

  const malformed: [string, Buffer][] = [
    ['an uppercase field name', block([...PSEUDO, ...GRPC, ['X-Agent-Id', 'alpha']])],
    [
      'a field name with a space',
      Buffer.concat([block([...PSEUDO, ...GRPC]), literalField('x agent', 'v')]),
    ],
    ['a value with a CR', block([...PSEUDO, ...GRPC, ['x-v', 'a\rb']])],
    ['a value with leading whitespace', block([...PSEUDO, ...GRPC, ['x-v', ' a']])],
    ['connection:', block([...PSEUDO, ...GRPC, ['connection', 'keep-alive']])],
    ['transfer-encoding:', block([...PSEUDO, ...GRPC, ['transfer-encoding', 'chunked']])],
    [
      'te other than trailers',
      block([...PSEUDO, ['content-type', 'application/grpc'], ['te', 'gzip']]),
    ],
    ['a pseudo-header after a regular field', block([...PSEUDO.slice(0, 3), ...GRPC, PSEUDO[3]!])],
    ['a repeated pseudo-header', block([...PSEUDO, [':path', '/other'], ...GRPC])],
    ['a response pseudo-header', block([...PSEUDO, [':status', '200'], ...GRPC])],
    ['an unknown pseudo-header', block([...PSEUDO, [':protocol', 'websocket'], ...GRPC])],
    ['no :path', block([...PSEUDO.filter(([n]) => n !== ':path'), ...GRPC])],
    ['an empty :path', block([...PSEUDO.filter(([n]) => n !== ':path'), [':path', ''], ...GRPC])],
    ['no :scheme', block([...PSEUDO.filter(([n]) => n !== ':scheme'), ...GRPC])],
    [
      'a content-length that is not a number',
      block([...PSEUDO, ...GRPC, ['content-length', '1e3']]),
    ],
  ];
  it.each(malformed)('%s is a stream error; the connection goes on', async (_name, headers) => {
    const before = await errorsSent(srv.app, 'PROTOCOL_ERROR', 'stream');
    const c = await connect();
    c.send(frame(T.HEADERS, END_HEADERS, 1, headers), frame(T.DATA, END_STREAM, 1, BODY));
    await expectStreamError(c);
    expect(await errorsSent(srv.app, 'PROTOCOL_ERROR', 'stream')).toBe(before + 1);
  });

  it('a body longer than its content-length is a stream error', async () => {
    const c = await connect();
    const h = requestBlock(CHECK, [['content-length', String(BODY.length - 1)]]);
    c.send(frame(T.HEADERS, END_HEADERS, 1, h), frame(T.DATA, END_STREAM, 1, BODY));
    await expectStreamError(c);
  });

  it('a body shorter than its content-length is a stream error', async () => {
    const c = await connect();
    const h = requestBlock(CHECK, [['content-length', String(BODY.length + 1)]]);
    c.send(frame(T.HEADERS, END_HEADERS, 1, h), frame(T.DATA, END_STREAM, 1, BODY));
    await expectStreamError(c);
  });

  it('a request ending with its headers but announcing a body is a stream error', async () => {
    const c = await connect();
    const h = requestBlock(CHECK, [['content-length', '5']]);
    c.send(frame(T.HEADERS, END_HEADERS | END_STREAM, 1, h));
    await expectStreamError(c);
  });

  it('trailers ending a body shorter than its content-length are a stream error', async () => {
    const c = await connect();
    const h = requestBlock(CHECK, [['content-length', String(BODY.length + 10)]]);
    c.send(frame(T.HEADERS, END_HEADERS, 1, h), frame(T.DATA, 0, 1, BODY));
    c.send(frame(T.HEADERS, END_HEADERS | END_STREAM, 1, block([['x-trailer', 'v']])));
    await expectStreamError(c);
  });

  it('a HEADERS frame whose priority names its own stream is a stream error', async () => {
    const c = await connect();
    const priority = Buffer.from([0, 0, 0, 1, 16]); // depends on stream 1, weight 17
    c.send(frame(T.HEADERS, END_HEADERS | 0x20, 1, Buffer.concat([priority, requestBlock()])));
    await expectStreamError(c);
  });

  it('a body matching its content-length is answered', async () => {
    const c = await connect();
    const h = requestBlock(CHECK, [['content-length', String(BODY.length)]]);
    c.send(frame(T.HEADERS, END_HEADERS, 1, h), frame(T.DATA, END_STREAM, 1, BODY));
    expect(
      await c.waitFor((f) => f.type === T.HEADERS && f.id === 1 && (f.flags & END_STREAM) !== 0),
    ).toBeDefined();
    expect(c.frames.some((f) => f.type === T.RST_STREAM)).toBe(false);
    c.close();
  });

  it('trailers that do not end the stream, or carry a pseudo-header, are a stream error', async () => {
    for (const [flags, trailers] of [
      [END_HEADERS, block([['x-trailer', 'v']])],
      [END_HEADERS | END_STREAM, block([[':path', '/']])],
    ] as const) {
      const c = await connect();
      c.send(frame(T.HEADERS, END_HEADERS, 1, requestBlock()), frame(T.DATA, 0, 1, BODY));
      c.send(frame(T.HEADERS, flags, 1, trailers));
      await expectStreamError(c);
    }
  });

  it('accepts trailers that end the request', async () => {
    const c = await connect();
    c.send(frame(T.HEADERS, END_HEADERS, 1, requestBlock()), frame(T.DATA, 0, 1, BODY));
    c.send(frame(T.HEADERS, END_HEADERS | END_STREAM, 1, block([['x-trailer', 'v']])));
    expect(
      await c.waitFor((f) => f.type === T.HEADERS && f.id === 1 && (f.flags & END_STREAM) !== 0),
    ).toBeDefined();
    expect(c.frames.some((f) => f.type === T.RST_STREAM)).toBe(false);
    c.close();
  });

  const connectionErrors: [string, (c: RawClient) => Promise<void>, number][] = [
    [
      'HEADERS reusing a finished stream id',
      async (c) => {
        c.send(
          frame(T.HEADERS, END_HEADERS, 1, requestBlock()),
          frame(T.DATA, END_STREAM, 1, BODY),
        );
        await c.waitFor((f) => f.type === T.HEADERS && f.id === 1 && (f.flags & END_STREAM) !== 0);
        c.send(
          frame(T.HEADERS, END_HEADERS, 1, requestBlock()),
          frame(T.DATA, END_STREAM, 1, BODY),
        );
      },
      H2_ERROR.PROTOCOL_ERROR,
    ],
    [
      'a decreasing stream id',
      async (c) => {
        c.send(frame(T.HEADERS, END_HEADERS, 5, requestBlock()));
        c.send(frame(T.HEADERS, END_HEADERS, 3, requestBlock()));
      },
      H2_ERROR.PROTOCOL_ERROR,
    ],
    [
      'DATA on a stream that ended normally',
      async (c) => {
        c.send(
          frame(T.HEADERS, END_HEADERS, 1, requestBlock()),
          frame(T.DATA, END_STREAM, 1, BODY),
        );
        await c.waitFor((f) => f.type === T.HEADERS && f.id === 1 && (f.flags & END_STREAM) !== 0);
        c.send(frame(T.DATA, END_STREAM, 1, BODY));
      },
      H2_ERROR.STREAM_CLOSED,
    ],
  ];
  it.each(connectionErrors)('%s is a connection error', async (_name, act, code) => {
    const c = await connect();
    await act(c);
    expect(await c.goawayCode()).toBe(code);
    expect(await c.waitClosed()).toBe(true);
  });

  it('frames that cross our RST_STREAM on the wire are ignored', async () => {
    const c = await connect();
    // A message announcing more than the 4 MiB limit: answered at once, then RST_STREAM(NO_ERROR).
    c.send(
      frame(T.HEADERS, END_HEADERS, 1, requestBlock()),
      frame(T.DATA, 0, 1, Buffer.from([0, 0, 0x50, 0, 0])),
    );
    expect(await c.resetCode(1)).toBe(H2_ERROR.NO_ERROR);
    c.send(
      frame(T.DATA, 0, 1, Buffer.alloc(1000)),
      frame(T.HEADERS, END_HEADERS | END_STREAM, 1, block([['x-t', 'v']])),
    );
    c.send(frame(T.HEADERS, END_HEADERS, 3, requestBlock()), frame(T.DATA, END_STREAM, 3, BODY));
    expect(
      await c.waitFor((f) => f.type === T.HEADERS && f.id === 3 && (f.flags & END_STREAM) !== 0),
    ).toBeDefined();
    expect(c.frames.some((f) => f.type === T.GOAWAY)).toBe(false);
    c.close();
  });
});
