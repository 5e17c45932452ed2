// A TCP relay between a client and the server that counts the connections it carries and notes
// the HTTP/2 frames going by that matter here, in wire order. The server exposes no connection
// counter, and each client stack reports reconnects and pings differently (or not at all); the
// wire says the same for all: how many connections, who pinged whom and when, where the GOAWAYs
// fell among the answers.
import net from 'node:net';
import { END_HEADERS, END_STREAM, T } from '../helpers/h2-limits.js';

const PREFACE_LENGTH = 24;
const { HEADERS, PING, GOAWAY, CONTINUATION } = T;
const ACK = 0x1;

export type Side = 'client' | 'server';
/** request: a client's HEADERS opening a stream; answer: a server's HEADERS ending one. */
export type Kind = 'request' | 'answer' | 'ping' | 'ack' | 'goaway';

export interface WireEvent {
  /** 1 for the first connection the relay accepted, 2 for the next, ... */
  readonly connection: number;
  readonly from: Side;
  readonly kind: Kind;
  /** For a request: the size of its header block on the wire (HPACK-encoded, all frames). */
  readonly headerBytes?: number;
}

/** Reads frame headers off one direction of one connection. */
class FrameReader {
  private pending: Buffer = Buffer.alloc(0);
  private skip: number;
  private readonly opened = new Set<number>();
  /** A request header block still arriving in CONTINUATION frames. */
  private block: { stream: number; bytes: number } | undefined;

  constructor(
    private readonly note: (kind: Kind, headerBytes?: number) => void,
    private readonly from: Side,
  ) {
    this.skip = from === 'client' ? PREFACE_LENGTH : 0;
  }

  push(chunk: Buffer): void {
    let buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const drop = Math.min(this.skip, buf.length);
    this.skip -= drop;
    buf = buf.subarray(drop);
    while (this.skip === 0 && buf.length >= 9) {
      const length = buf.readUIntBE(0, 3);
      if (buf.length < 9 + length) break;
      this.frame(buf[3]!, buf[4]!, buf.readUInt32BE(5) & 0x7fffffff, length);
      buf = buf.subarray(9 + length);
    }
    this.pending = Buffer.from(buf);
  }

  private frame(type: number, flags: number, stream: number, length: number): void {
    if (type === PING) this.note((flags & ACK) !== 0 ? 'ack' : 'ping');
    else if (type === GOAWAY) this.note('goaway');
    else if (type === HEADERS && this.from === 'server' && (flags & END_STREAM) !== 0)
      this.note('answer');
    else if (type === HEADERS && this.from === 'client' && !this.opened.has(stream)) {
      this.opened.add(stream);
      this.block = { stream, bytes: 0 };
    }
    const b = this.block;
    if (b === undefined || b.stream !== stream || (type !== HEADERS && type !== CONTINUATION))
      return;
    b.bytes += length;
    if ((flags & END_HEADERS) !== 0) {
      this.block = undefined;
      this.note('request', b.bytes);
    }
  }
}

export interface TcpProbe {
  /** host:port for the client to dial instead of the server. */
  readonly target: string;
  readonly connections: number;
  readonly events: readonly WireEvent[];
  count(from: Side, kind: Kind): number;
  /** Answers the server sent on a connection after its own first GOAWAY there. */
  answersAfterGoaway(): number;
  close(): Promise<void>;
}

export async function startTcpProbe(serverPort: number): Promise<TcpProbe> {
  const sockets = new Set<net.Socket>();
  const events: WireEvent[] = [];
  let connections = 0;
  const server = net.createServer((client) => {
    const connection = ++connections;
    const upstream = net.connect(serverPort, '127.0.0.1');
    const reader = (from: Side) =>
      new FrameReader(
        (kind, headerBytes) =>
          events.push({
            connection,
            from,
            kind,
            ...(headerBytes === undefined ? {} : { headerBytes }),
          }),
        from,
      );
    const fromClient = reader('client');
    const fromServer = reader('server');
    client.on('data', (d: Buffer) => fromClient.push(d));
    upstream.on('data', (d: Buffer) => fromServer.push(d));
    // A server's GOAWAY and FIN must reach the client as sent: pipe() ends the other side on
    // 'end' (half-close) after what is buffered; only an error tears down both.
    client.pipe(upstream);
    upstream.pipe(client);
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(a);
      a.on('error', () => b.destroy());
      a.on('close', (hadError) => {
        sockets.delete(a);
        if (hadError) b.destroy();
        else b.end();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    target: `127.0.0.1:${port}`,
    get connections() {
      return connections;
    },
    events,
    count: (from, kind) => events.filter((e) => e.from === from && e.kind === kind).length,
    answersAfterGoaway: () => {
      const goneAway = new Set<number>();
      let n = 0;
      for (const e of events) {
        if (e.from !== 'server') continue;
        if (e.kind === 'goaway') goneAway.add(e.connection);
        else if (e.kind === 'answer' && goneAway.has(e.connection)) n++;
      }
      return n;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
