// What a gRPC method looks like to a transport: a unary handler or a server-streaming one, keyed
// by its HTTP/2 path. Both transports serve the same routes (Check and health).
import type { Server } from 'node:net';

/**
 * A unary method: the request message (undefined when framing was invalid) to the response. The
 * message may be a view that is reused once the route returns (the h2c transport's shared read
 * buffer), for stream routes too: a route decodes it before returning, or copies what it keeps.
 */
export interface UnaryRoute {
  readonly kind: 'unary';
  handle(message: Buffer | undefined): Promise<Uint8Array> | Uint8Array;
}

/** A server-streaming method: `open` writes messages until it ends the call. */
export interface StreamRoute {
  readonly kind: 'stream';
  open(message: Buffer | undefined, call: StreamCall): void;
}

export interface StreamCall {
  write(message: Uint8Array): void;
  end(status?: number, message?: string): void;
  onClose(listener: () => void): void;
}

export type Route = UnaryRoute | StreamRoute;
export type Routes = ReadonlyMap<string, Route>;

/** Listens on host:port and resolves with the bound port (port 0 picks a free one). */
export function listenOn(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr !== null ? addr.port : port);
    });
  });
}
