// gRPC over cleartext HTTP/2 (h2c with prior knowledge — what Envoy's gRPC client speaks to a
// plaintext `http2_protocol_options` cluster), read straight off TCP sockets. Why a transport of
// our own, and what it leaves out: docs/adr/0001-own-http2-transport.md; its limits:
// docs/transport.md. This file accepts connections within the cap, shares the memory budget
// between them, and closes them gracefully.
import net from 'node:net';
import { listenOn, type Routes } from '../grpc/routes.js';
import { Connection } from './connection.js';
import { ErrorCode, goawayFrame, settingsFrame } from './frames.js';
import type { H2cOptions, TransportEvents } from './limits.js';
import { MemoryBudget } from './memory-budget.js';

const NO_EVENTS: TransportEvents = {
  limitExceeded: () => undefined,
  errorSent: () => undefined,
  connectionAccepted: () => undefined,
};

export class GrpcH2cServer {
  private readonly server: net.Server;
  private readonly connections = new Set<Connection>();
  readonly budget: MemoryBudget;
  private closing = false;
  private capLoggedAt = -Infinity;

  constructor(
    private readonly routes: Routes,
    private readonly opts: H2cOptions,
    private readonly events: TransportEvents = NO_EVENTS,
  ) {
    this.budget = new MemoryBudget(opts.maxBufferedBytes, this.connections);
    this.server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
  }

  /** Open connections (for metrics and tests). */
  get connectionCount(): number {
    return this.connections.size;
  }

  listen(host: string, port: number): Promise<number> {
    return listenOn(this.server, host, port);
  }

  private accept(socket: net.Socket): void {
    if (this.closing) return void socket.destroy();
    if (this.connections.size >= this.opts.maxConnections) {
      // Logged at most every ten seconds: a connection flood must not flood the log too.
      const now = performance.now();
      const log = now - this.capLoggedAt > 10_000;
      if (log) this.capLoggedAt = now;
      this.events.limitExceeded('max_connections', socket.remoteAddress ?? '?', log);
      // Room is made by closing the connection idle longest (no stream open), so idle
      // connections cannot hold every slot; with none idle, the newcomer is turned away.
      const idle = this.idlest();
      if (idle !== undefined) idle.evict();
      else return this.refuse(socket);
    }
    const c = new Connection(socket, {
      routes: this.routes,
      opts: this.opts,
      budget: this.budget,
      events: this.events,
      gone: (gone) => this.connections.delete(gone),
    });
    this.connections.add(c);
    this.events.connectionAccepted();
  }

  private idlest(): Connection | undefined {
    let found: Connection | undefined;
    for (const c of this.connections)
      if (
        c.streams.size === 0 &&
        (found === undefined || c.streams.lastOpened < found.streams.lastOpened)
      )
        found = c;
    return found;
  }

  /** Told why, in the protocol it speaks; no stream was started, so a client may retry later. */
  private refuse(socket: net.Socket): void {
    socket.on('error', () => undefined);
    socket.end(
      Buffer.concat([
        settingsFrame([]),
        goawayFrame(0, ErrorCode.ENHANCE_YOUR_CALM, 'too many connections'),
      ]),
    );
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  /** Stops accepting, sends GOAWAY, lets in-flight calls finish, destroys what is left at the deadline. */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.connections) c.drain();
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
    await Promise.race([Promise.all([...this.connections].map((c) => c.finished)), deadline]);
    for (const c of this.connections) c.destroy();
    await closed;
  }
}
