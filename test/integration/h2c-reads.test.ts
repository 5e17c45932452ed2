// The h2c transport reads into one buffer shared by all connections (Node's onread mode) by
// default: every byte it keeps past a read — a partial frame, a header block continued in
// CONTINUATION, a body in several DATA frames — must be copied before the next read overwrites
// it. Requests are cut at random points and written piece by piece; every answer must be the
// digest of its own request, in both read modes.
import { createHash } from 'node:crypto';
import net from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UnaryRoute } from '../../src/server/grpc/routes.js';
import { encodeHeaders } from '../../src/server/h2c/hpack-encoder.js';
import type { H2cOptions } from '../../src/server/h2c/limits.js';
import { GrpcH2cServer } from '../../src/server/h2c/server.js';
import { PREFACE, frame } from '../helpers/h2-frames.js';

const SYNC = '/test.Digest/Sync';
const LATER = '/test.Digest/Later';
const DATA = 0x0;
const HEADERS = 0x1;
const SETTINGS = 0x4;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;

const digest = (m: Uint8Array | undefined) =>
  createHash('sha256')
    .update(m ?? Buffer.alloc(0))
    .digest();

// The sync route answers while the read is current; the other decodes first, answers later.
const routes = new Map<string, UnaryRoute>([
  [SYNC, { kind: 'unary', handle: (m) => digest(m) }],
  [
    LATER,
    {
      kind: 'unary',
      handle: (m) => {
        const d = digest(m);
        return new Promise((resolve) => setTimeout(() => resolve(d), 1));
      },
    },
  ],
]);

const OPTS: H2cOptions = {
  maxMessageBytes: 1 << 20,
  maxConcurrentStreams: 100,
  keepaliveMs: 60_000,
  keepaliveTimeoutMs: 10_000,
  maxConnectionAgeMs: 600_000,
  maxConnectionAgeGraceMs: 1000,
  maxConnections: 100,
  maxHeaderListSize: 65_536,
  maxBufferedBytes: 64 * 1024 * 1024,
  resetBurst: 1000,
  resetRate: 100,
  streamIdleTimeoutMs: 30_000,
};

interface Req {
  readonly id: number;
  readonly path: string;
  readonly body: Buffer;
  /** Header block in two frames (HEADERS + CONTINUATION), body in two DATA frames. */
  readonly split: boolean;
}

function encodeRequest(r: Req): Buffer {
  const block = encodeHeaders([
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', r.path],
    [':authority', 'test'],
    ['content-type', 'application/grpc'],
    ['te', 'trailers'],
  ]);
  const msg = Buffer.alloc(5 + r.body.length);
  msg.writeUInt32BE(r.body.length, 1);
  r.body.copy(msg, 5);
  if (!r.split)
    return Buffer.concat([
      frame(HEADERS, END_HEADERS, r.id, block),
      frame(DATA, END_STREAM, r.id, msg),
    ]);
  const h = block.length >> 1;
  const d = msg.length >> 1;
  return Buffer.concat([
    frame(HEADERS, 0, r.id, block.subarray(0, h)),
    frame(CONTINUATION, END_HEADERS, r.id, block.subarray(h)),
    frame(DATA, 0, r.id, msg.subarray(0, d)),
    frame(DATA, END_STREAM, r.id, msg.subarray(d)),
  ]);
}

/** Sends `bytes` in pieces cut at `cuts`, pausing between them; resolves with each stream's answer. */
function exchange(
  port: number,
  bytes: Buffer,
  cuts: number[],
  streams: number,
): Promise<Map<number, Buffer>> {
  return new Promise((resolve, reject) => {
    const answers = new Map<number, Buffer>();
    const done = new Set<number>();
    let buf = Buffer.alloc(0);
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`only ${done.size} of ${streams} streams answered`));
    }, 10_000);
    socket.on('error', reject);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        const type = buf[3]!;
        const flags = buf[4]!;
        const id = buf.readUInt32BE(5) & 0x7fffffff;
        const payload = buf.subarray(9, 9 + len);
        buf = buf.subarray(9 + len);
        if (type === DATA && id !== 0) answers.set(id, Buffer.from(payload.subarray(5)));
        if (type === HEADERS && (flags & END_STREAM) !== 0) done.add(id);
      }
      if (done.size === streams) {
        clearTimeout(timer);
        socket.destroy();
        resolve(answers);
      }
    });
    void (async () => {
      let at = 0;
      for (const cut of [...cuts, bytes.length]) {
        if (cut <= at) continue;
        socket.write(bytes.subarray(at, cut));
        at = cut;
        await new Promise((r) => setTimeout(r, 1));
      }
    })();
  });
}

const request = fc.record({
  later: fc.boolean(),
  split: fc.boolean(),
  body: fc.uint8Array({ minLength: 0, maxLength: 2500 }).map((b) => Buffer.from(b)),
});

describe.each([true, false])('h2c reads (shared read buffer: %s)', (sharedReads) => {
  let server: GrpcH2cServer;
  let port: number;
  beforeAll(async () => {
    server = new GrpcH2cServer(routes, { ...OPTS, sharedReads });
    port = await server.listen('127.0.0.1', 0);
  });
  afterAll(() => server.close(100));

  it('property: requests cut anywhere are each answered with their own digest', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(request, { minLength: 1, maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 25 }),
        async (specs, rawCuts) => {
          const reqs: Req[] = specs.map((s, i) => ({
            id: 2 * i + 1,
            path: s.later ? LATER : SYNC,
            body: s.body,
            split: s.split,
          }));
          const bytes = Buffer.concat([
            PREFACE,
            frame(SETTINGS, 0, 0, Buffer.alloc(0)),
            ...reqs.map(encodeRequest),
          ]);
          const cuts = [...new Set(rawCuts.map((c) => c % bytes.length))].sort((a, b) => a - b);
          const answers = await exchange(port, bytes, cuts, reqs.length);
          for (const r of reqs) expect(answers.get(r.id)?.equals(digest(r.body))).toBe(true);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('keeps connections apart when their pieces arrive interleaved', async () => {
    const make = (tag: string, n: number): Req[] =>
      Array.from({ length: n }, (_, i) => ({
        id: 2 * i + 1,
        path: i % 2 === 0 ? LATER : SYNC,
        body: Buffer.from(`${tag} ${i} `.repeat(50 + i * 7)),
        split: i % 3 === 0,
      }));
    const conns = ['a', 'b', 'c'].map((tag) => make(tag, 8));
    const wire = (reqs: Req[]) =>
      Buffer.concat([PREFACE, frame(SETTINGS, 0, 0, Buffer.alloc(0)), ...reqs.map(encodeRequest)]);
    const results = await Promise.all(
      conns.map((reqs) => {
        const bytes = wire(reqs);
        const cuts = Array.from({ length: 30 }, (_, k) =>
          Math.floor(((k + 1) * bytes.length) / 31),
        );
        return exchange(port, bytes, cuts, reqs.length);
      }),
    );
    conns.forEach((reqs, c) => {
      for (const r of reqs) expect(results[c]!.get(r.id)?.equals(digest(r.body))).toBe(true);
    });
  });

  it('answers many small requests written back to back in one piece', async () => {
    const reqs: Req[] = Array.from({ length: 40 }, (_, i) => ({
      id: 2 * i + 1,
      path: i % 3 === 0 ? LATER : SYNC,
      body: Buffer.from(`request ${i} `.repeat(i + 1)),
      split: i % 5 === 0,
    }));
    const bytes = Buffer.concat([
      PREFACE,
      frame(SETTINGS, 0, 0, Buffer.alloc(0)),
      ...reqs.map(encodeRequest),
    ]);
    const answers = await exchange(port, bytes, [], reqs.length);
    for (const r of reqs) expect(answers.get(r.id)?.equals(digest(r.body))).toBe(true);
  });
});
