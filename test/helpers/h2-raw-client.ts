// A raw HTTP/2 client for the h2c transport tests: it writes whatever bytes a test gives it and
// collects every frame the server sends, so tests can assert on frames, codes and closes.
import net from 'node:net';
import { encodeHeaders } from '../../src/server/h2c/hpack-encoder.js';
import { PREFACE, frame } from './h2-frames.js';

export const CHECK = '/envoy.service.auth.v3.Authorization/Check';

export interface Frame {
  type: number;
  flags: number;
  id: number;
  payload: Buffer;
}

/** A gRPC request's header block (literals without indexing). */
export function requestBlock(
  path = CHECK,
  extra: readonly (readonly [string, string])[] = [],
): Buffer {
  return encodeHeaders([
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', path],
    [':authority', 'agent-authz'],
    ['content-type', 'application/grpc'],
    ['te', 'trailers'],
    ...extra,
  ]);
}

export class RawClient {
  readonly frames: Frame[] = [];
  closed = false;
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 9) {
        const len = this.buf.readUIntBE(0, 3);
        if (this.buf.length < 9 + len) break;
        this.frames.push({
          type: this.buf[3]!,
          flags: this.buf[4]!,
          id: this.buf.readUInt32BE(5) & 0x7fffffff,
          payload: this.buf.subarray(9, 9 + len),
        });
        this.buf = this.buf.subarray(9 + len);
      }
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  /** Connects and sends the preface and a SETTINGS frame (unless `handshake` is false). */
  static connect(
    port: number,
    settings: [number, number][] = [],
    handshake = true,
  ): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        const c = new RawClient(socket);
        if (handshake) {
          const s = Buffer.alloc(settings.length * 6);
          settings.forEach(([k, v], i) => {
            s.writeUInt16BE(k, i * 6);
            s.writeUInt32BE(v, i * 6 + 2);
          });
          socket.write(Buffer.concat([PREFACE, frame(4, 0, 0, s)]));
        }
        resolve(c);
      });
      socket.once('error', reject);
    });
  }

  send(...bytes: Buffer[]): void {
    if (!this.socket.destroyed) this.socket.write(Buffer.concat(bytes));
  }

  /** ACKs the server's SETTINGS once they arrive. */
  async ackSettings(): Promise<void> {
    await this.waitFor((f) => f.type === 4 && (f.flags & 1) === 0);
    this.send(frame(4, 1, 0));
  }

  /** Resolves with the first frame matching `pred` (or undefined when the socket closes or time runs out). */
  async waitFor(pred: (f: Frame) => boolean, ms = 5000): Promise<Frame | undefined> {
    const deadline = Date.now() + ms;
    for (;;) {
      const f = this.frames.find(pred);
      if (f !== undefined || this.closed || Date.now() > deadline) return f;
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 20);
      });
    }
  }

  async waitClosed(ms = 5000): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }

  /** The error code of the first GOAWAY the server sent, once it has. */
  async goawayCode(ms = 5000): Promise<number | undefined> {
    const g = await this.waitFor((f) => f.type === 7, ms);
    return g?.payload.readUInt32BE(4);
  }

  /** The error code of the server's RST_STREAM on stream `id`, once it has sent one. */
  async resetCode(id: number, ms = 5000): Promise<number | undefined> {
    const r = await this.waitFor((f) => f.type === 3 && f.id === id, ms);
    return r?.payload.readUInt32BE(0);
  }

  close(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}
