// Flood protection of the h2c listener, tried as an attacker would, one connection at a time
// against the real server: each flood must end its connection with GOAWAY ENHANCE_YOUR_CALM (or
// the RFC 9113 error it calls for), be counted under its limit, leave nothing buffered, and leave
// the server answering a legitimate check on another connection.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EnvoyCheckClient, encodeOfficialRequest, reasonOf } from '../helpers/official-envoy.js';
import { frame, grpcMessage } from '../helpers/h2-frames.js';
import {
  END_HEADERS,
  END_STREAM,
  H2_ERROR,
  T,
  bufferedBytes,
  limitCount,
} from '../helpers/h2-limits.js';
import { RawClient, requestBlock } from '../helpers/h2-raw-client.js';
import { literalField } from '../helpers/hpack.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const ALPHA = 'spiffe://example.org/agents/alpha';
const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
};
const setting = (id: number, value: number) => {
  const b = Buffer.alloc(6);
  b.writeUInt16BE(id);
  b.writeUInt32BE(value, 2);
  return b;
};
/** `n` streams opened with HEADERS and left waiting for a body. */
const openStreams = (n: number, firstId = 1) =>
  Array.from({ length: n }, (_, i) =>
    frame(T.HEADERS, END_HEADERS, firstId + 2 * i, requestBlock()),
  );

describe('h2c flood protection', () => {
  let srv: TestServer;
  let port: number;
  let legit: EnvoyCheckClient;
  let client: RawClient | undefined;
  beforeAll(async () => {
    srv = await startTestServer({
      registry_file: 'examples/registry.yaml',
      spiffe_trust_domains: 'example.org',
    });
    port = srv.app.grpcPort;
    legit = new EnvoyCheckClient(srv.address);
  });
  afterEach(async () => {
    client?.close();
    client = undefined;
    expect(reasonOf(await legit.check({ principal: ALPHA }))).toBe('allowed');
  });
  afterAll(async () => {
    legit.close();
    await srv.stop();
  });

  async function connect(settings: [number, number][] = []): Promise<RawClient> {
    client = await RawClient.connect(port, settings);
    await client.ackSettings();
    return client;
  }

  /** The flood ends with GOAWAY `code`, counted once under `limit`, nothing left buffered. */
  async function expectEnded(
    c: RawClient,
    limit: string,
    before: number,
    code = H2_ERROR.ENHANCE_YOUR_CALM,
  ) {
    expect(await c.goawayCode()).toBe(code);
    expect(await c.waitClosed()).toBe(true);
    expect(await limitCount(srv.app, limit)).toBe(before + 1);
    expect(await bufferedBytes(srv.app)).toBe(0);
  }

  it('empty DATA frames (CVE-2019-9518): the second one in a row ends the connection', async () => {
    const before = await limitCount(srv.app, 'empty_frames');
    const c = await connect();
    c.send(frame(T.HEADERS, END_HEADERS, 1, requestBlock()));
    c.send(...Array.from({ length: 20_000 }, () => frame(T.DATA, 0, 1)));
    await expectEnded(c, 'empty_frames', before);
  });

  it('one-byte DATA frames: more than 8 plus one per KiB on a stream end the connection', async () => {
    const before = await limitCount(srv.app, 'small_data_frames');
    const c = await connect();
    // Within the allowance: a message in seven pieces and an eighth frame is answered.
    const msg = grpcMessage(encodeOfficialRequest({ principal: ALPHA }));
    const cuts = [1, 2, 3, 4, 5, 6, 7];
    c.send(frame(T.HEADERS, END_HEADERS, 1, requestBlock()));
    cuts.forEach((at, i) =>
      c.send(frame(T.DATA, 0, 1, msg.subarray(i === 0 ? 0 : cuts[i - 1], at))),
    );
    c.send(frame(T.DATA, END_STREAM, 1, msg.subarray(7)));
    expect(
      await c.waitFor((f) => f.type === T.HEADERS && f.id === 1 && (f.flags & END_STREAM) !== 0),
    ).toBeDefined();
    // Past it: a 40 000-byte message sent a byte at a time.
    const prefix = Buffer.from([0, 0, 0, 0x9c, 0x40]);
    c.send(frame(T.HEADERS, END_HEADERS, 3, requestBlock()), frame(T.DATA, 0, 3, prefix));
    c.send(...Array.from({ length: 40_000 }, () => frame(T.DATA, 0, 3, Buffer.from('x'))));
    await expectEnded(c, 'small_data_frames', before);
  });

  it('one-byte DATA frames on a stream answered early and reset end the connection too', async () => {
    const before = await limitCount(srv.app, 'small_data_frames');
    const c = await connect();
    // A message announcing more than the 4 MiB limit is answered at once and reset.
    c.send(frame(T.HEADERS, END_HEADERS, 1, requestBlock()));
    c.send(frame(T.DATA, 0, 1, Buffer.from([0, 0, 0x50, 0, 0])));
    expect(await c.resetCode(1)).toBe(H2_ERROR.NO_ERROR);
    c.send(...Array.from({ length: 40_000 }, () => frame(T.DATA, 0, 1, Buffer.from('x'))));
    await expectEnded(c, 'small_data_frames', before);
  });

  it('20 000 empty SETTINGS with 4 096 streams open are each acknowledged, and the server keeps serving', async () => {
    const c = await connect();
    c.send(...openStreams(4096));
    c.send(...Array.from({ length: 20_000 }, () => frame(T.SETTINGS, 0, 0)));
    const acks = async () =>
      c.frames.filter((f) => f.type === T.SETTINGS && (f.flags & 1) !== 0).length;
    const deadline = Date.now() + 20_000;
    while ((await acks()) < 20_001 && !c.closed && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    expect(await acks()).toBe(20_001); // the handshake's SETTINGS too
    expect(c.closed).toBe(false);
  });

  it('20 000 stream-0 WINDOW_UPDATE frames with 4 096 streams open end the connection', async () => {
    const before = await limitCount(srv.app, 'window_update_frames');
    const c = await connect();
    c.send(...openStreams(4096));
    c.send(...Array.from({ length: 20_000 }, () => frame(T.WINDOW_UPDATE, 0, 0, u32(1))));
    await expectEnded(c, 'window_update_frames', before);
  });

  it('INITIAL_WINDOW_SIZE changes that make no progress on blocked answers end the connection', async () => {
    const before = await limitCount(srv.app, 'window_update_frames');
    const c = await connect([[0x4, 10]]); // answers stop after 10 bytes of DATA
    const body = grpcMessage(encodeOfficialRequest({ principal: ALPHA }));
    for (let i = 0; i < 100; i++)
      c.send(
        frame(T.HEADERS, END_HEADERS, 1 + 2 * i, requestBlock()),
        frame(T.DATA, END_STREAM, 1 + 2 * i, body),
      );
    await c.waitFor((f) => f.type === T.DATA && f.id === 199);
    // 0 then 5: every window is negative and grows, nothing can be sent.
    for (let i = 0; i < 200; i++)
      c.send(frame(T.SETTINGS, 0, 0, setting(0x4, i % 2 === 0 ? 0 : 5)));
    await expectEnded(c, 'window_update_frames', before);
  });

  it('stream-0 WINDOW_UPDATEs that only ever let one byte out end the connection', async () => {
    const before = await limitCount(srv.app, 'window_update_frames');
    const c = await connect();
    // Answers use up the 65 535-byte connection window we never raise, then 200 more queue up.
    const body = grpcMessage(encodeOfficialRequest({ principal: ALPHA }));
    for (let i = 0; i < 600; i++)
      c.send(
        frame(T.HEADERS, END_HEADERS, 1 + 2 * i, requestBlock()),
        frame(T.DATA, END_STREAM, 1 + 2 * i, body),
      );
    c.send(frame(T.PING, 0, 0, Buffer.alloc(8)));
    await c.waitFor((f) => f.type === T.PING && (f.flags & 1) !== 0);
    c.send(...Array.from({ length: 20_000 }, () => frame(T.WINDOW_UPDATE, 0, 0, u32(1))));
    await expectEnded(c, 'window_update_frames', before);
  });

  it('answering requests before their bodies does not count their late DATA against the client', async () => {
    const c = await connect();
    // An unknown method is answered at its headers; the body the client sends anyway is ignored.
    for (let i = 0; i < 60; i++) {
      const id = 1 + 2 * i;
      c.send(
        frame(
          T.HEADERS,
          END_HEADERS,
          id,
          requestBlock('/envoy.service.auth.v2.Authorization/Check'),
        ),
      );
      await c.waitFor((f) => f.type === T.HEADERS && f.id === id);
      c.send(frame(T.DATA, END_STREAM, id, grpcMessage(Buffer.from('x'))));
    }
    c.send(frame(T.PING, 0, 0, Buffer.alloc(8)));
    expect(await c.waitFor((f) => f.type === T.PING && (f.flags & 1) !== 0)).toBeDefined();
    expect(c.frames.some((f) => f.type === T.GOAWAY)).toBe(false);
  });

  it('PRIORITY frames beyond 100 per stream opened end the connection', async () => {
    const before = await limitCount(srv.app, 'priority_frames');
    const c = await connect();
    c.send(
      ...Array.from({ length: 500 }, () => frame(T.PRIORITY, 0, 1, Buffer.from([0, 0, 0, 0, 16]))),
    );
    await expectEnded(c, 'priority_frames', before);
  });

  it.each([33, 2730])('a SETTINGS frame with %i entries ends the connection', async (n) => {
    const before = await limitCount(srv.app, 'settings_entries');
    const c = await connect();
    c.send(
      frame(T.SETTINGS, 0, 0, Buffer.concat(Array.from({ length: n }, () => setting(0x3, 100)))),
    );
    await expectEnded(c, 'settings_entries', before);
  });

  it('rapid reset (CVE-2023-44487): HEADERS + RST_STREAM pairs end the connection at the reset budget', async () => {
    const before = await limitCount(srv.app, 'stream_resets');
    const c = await connect();
    const pairs = Array.from({ length: 20_000 }, (_, i) => [
      frame(T.HEADERS, END_HEADERS, 1 + 2 * i, requestBlock()),
      frame(T.RST_STREAM, 0, 1 + 2 * i, u32(H2_ERROR.CANCEL)),
    ]).flat();
    c.send(...pairs);
    const goaway = await c.waitFor((f) => f.type === T.GOAWAY);
    // The default budget is a burst of 1 000: the last stream the server took is near it.
    expect(goaway!.payload.readUInt32BE(0)).toBeLessThan(2 * 1100);
    await expectEnded(c, 'stream_resets', before);
  });

  it('streams past MAX_CONCURRENT_STREAMS are refused, and refusing counts against the reset budget', async () => {
    const before = await limitCount(srv.app, 'stream_resets');
    const c = await connect();
    c.send(...openStreams(4096 + 3000));
    expect(await c.resetCode(1 + 2 * 4096)).toBe(H2_ERROR.REFUSED_STREAM);
    await expectEnded(c, 'stream_resets', before);
  });

  it('CONTINUATION flood: a header block that never ends is cut at its size limit', async () => {
    const before = await limitCount(srv.app, 'header_block_size');
    const c = await connect();
    c.send(frame(T.HEADERS, 0, 1, requestBlock()));
    c.send(
      ...Array.from({ length: 400 }, () => frame(T.CONTINUATION, 0, 1, Buffer.alloc(1000, 0x40))),
    );
    await expectEnded(c, 'header_block_size', before);
  });

  it('CONTINUATION flood of one-byte frames ends the connection', async () => {
    const before = await limitCount(srv.app, 'continuation_frames');
    const c = await connect();
    c.send(frame(T.HEADERS, 0, 1, requestBlock()));
    c.send(...Array.from({ length: 5000 }, () => frame(T.CONTINUATION, 0, 1, Buffer.from([0x82]))));
    await expectEnded(c, 'continuation_frames', before);
  });

  it('HPACK bomb: a header list over the advertised size is answered on its stream, the others go on', async () => {
    const before = await limitCount(srv.app, 'header_list_size');
    const c = await connect();
    c.send(frame(T.HEADERS, END_HEADERS, 1, requestBlock())); // a request waiting for its body
    const bomb = Buffer.concat([
      indexingRequestBlock(),
      literalField('x-bomb', 'b'.repeat(4000), { indexing: true }),
      Buffer.alloc(100, 0xbe), // 100 references to the 4 KB entry: 400 KB decoded
    ]);
    c.send(frame(T.HEADERS, END_HEADERS | END_STREAM, 3, bomb));
    const answer = await c.waitFor((f) => f.type === T.HEADERS && f.id === 3);
    expect(answer!.flags & END_STREAM).toBe(END_STREAM);
    expect(answer!.payload.includes(Buffer.from('grpc-status'))).toBe(true);
    expect(answer!.payload.includes(Buffer.from([0x01, 0x38]))).toBe(true); // grpc-status "8"
    c.send(frame(T.DATA, END_STREAM, 1, grpcMessage(encodeOfficialRequest({ principal: ALPHA }))));
    const done = await c.waitFor(
      (f) => f.type === T.HEADERS && f.id === 1 && (f.flags & END_STREAM) !== 0,
    );
    expect(done).toBeDefined();
    expect(c.frames.some((f) => f.type === T.GOAWAY)).toBe(false);
    expect(await limitCount(srv.app, 'header_list_size')).toBe(before + 1);
  });

  it('a stream of HPACK bombs ends the connection on its header-byte budget', async () => {
    const before = await limitCount(srv.app, 'header_bytes');
    const c = await connect();
    c.send(
      frame(
        T.HEADERS,
        END_HEADERS | END_STREAM,
        1,
        Buffer.concat([
          indexingRequestBlock(),
          literalField('x-bomb', 'b'.repeat(4000), { indexing: true }),
        ]),
      ),
    );
    const refs = Buffer.alloc(16_000, 0xbe);
    for (let i = 1; i <= 400; i++) {
      const block = Buffer.concat([indexingRequestBlock(), refs]);
      c.send(
        frame(T.HEADERS, END_STREAM, 1 + 2 * i, block.subarray(0, 16_000)),
        frame(T.CONTINUATION, END_HEADERS, 1 + 2 * i, block.subarray(16_000)),
      );
    }
    await expectEnded(c, 'header_bytes', before);
  });

  it('a stream of Huffman-heavy header blocks ends the connection on its header-byte budget', async () => {
    const before = await limitCount(srv.app, 'header_bytes');
    const c = await connect();
    const value = Buffer.from(Array.from({ length: 60_000 }, (_, i) => 0x21 + ((i * 7919) % 90)));
    const field = literalField('x-big', value, { huffman: true });
    for (let i = 0; i < 200; i++) {
      const block = Buffer.concat([requestBlock(), field]);
      const id = 1 + 2 * i;
      const frames = [frame(T.HEADERS, END_STREAM, id, block.subarray(0, 16_000))];
      for (let at = 16_000; at < block.length; at += 16_000)
        frames.push(
          frame(
            T.CONTINUATION,
            at + 16_000 >= block.length ? END_HEADERS : 0,
            id,
            block.subarray(at, at + 16_000),
          ),
        );
      c.send(...frames);
    }
    await expectEnded(c, 'header_bytes', before);
  });

  it('a peer that sends PINGs and never reads is cut off when its unread answers pile up', async () => {
    const before =
      (await limitCount(srv.app, 'outbound_control_frames')) +
      (await limitCount(srv.app, 'output_buffer'));
    const c = await connect();
    c.socket.pause();
    const pings = Buffer.concat(
      Array.from({ length: 10_000 }, () => frame(T.PING, 0, 0, Buffer.alloc(8))),
    );
    for (let i = 0; i < 60 && !c.socket.destroyed; i++) {
      c.send(pings);
      await new Promise((r) => setTimeout(r, 20));
    }
    c.socket.resume();
    expect(await c.waitClosed(10_000)).toBe(true);
    const after =
      (await limitCount(srv.app, 'outbound_control_frames')) +
      (await limitCount(srv.app, 'output_buffer'));
    expect(after).toBe(before + 1);
    expect(await bufferedBytes(srv.app)).toBe(0);
  });
});

/**
 * A request block without the dynamic-table size update to 0 that requestBlock() starts with:
 * the table keeps its default 4 096 octets, so a block can index a field and later ones refer
 * to it.
 */
function indexingRequestBlock(): Buffer {
  return Buffer.concat([Buffer.from([0x3f, 0xe1, 0x1f]), requestBlock().subarray(1)]);
}
