// Reads from every connection into one shared buffer, through Node's `onread` socket mode. Node
// documents `onread` for sockets it creates (`new net.Socket({ onread })`), not for those a server
// accepts; this sets on an accepted socket the two internal fields that option sets, after
// checking that this Node has them, and otherwise leaves the socket to plain 'data' events.
// test/integration/h2c-reads.test.ts fails if a Node upgrade removes or renames them.
import type net from 'node:net';

/** The read buffer's size: a read never takes more, larger frames arrive over several reads. */
export const READ_BUFFER_BYTES = 64 * 1024;
let readBuffer: Buffer | undefined;

interface Internals {
  handle: { useUserBuffer(b: Uint8Array): void };
  kBuffer: symbol;
  kBufferCb: symbol;
}

function internals(socket: net.Socket): Internals | undefined {
  const handle = (socket as unknown as { _handle?: { useUserBuffer?: unknown } })._handle;
  const fields = Object.getOwnPropertySymbols(socket);
  const kBuffer = fields.find((f) => f.description === 'kBuffer');
  const kBufferCb = fields.find((f) => f.description === 'kBufferCb');
  if (
    typeof handle?.useUserBuffer !== 'function' ||
    kBuffer === undefined ||
    kBufferCb === undefined
  )
    return undefined;
  return { handle: handle as Internals['handle'], kBuffer, kBufferCb };
}

/** Whether this Node lets an accepted socket read into a buffer of ours. */
export function sharedReadsSupported(socket: net.Socket): boolean {
  return internals(socket) !== undefined;
}

/**
 * Switches an accepted socket to reading into the shared buffer, handing `onRead` a view of each
 * read, instead of Node allocating an ArrayBuffer per read — one per check at Envoy's rates, which
 * young-generation collections then had to sweep. Sharing is safe because a read is handled to
 * the end before the event loop does another (the connection copies whatever it keeps), and it
 * keeps the memory constant however many connections there are. pause()/resume() and
 * 'end'/'close' behave as with 'data'. Returns false, changing nothing, where Node lacks the fields.
 */
export function readIntoSharedBuffer(socket: net.Socket, onRead: (bytes: Buffer) => void): boolean {
  const found = internals(socket);
  if (found === undefined) return false;
  const buf = (readBuffer ??= Buffer.allocUnsafe(READ_BUFFER_BYTES));
  const s = socket as unknown as Record<symbol, unknown>;
  s[found.kBuffer] = buf;
  s[found.kBufferCb] = (n: number) => {
    onRead(buf.subarray(0, n));
    return true;
  };
  found.handle.useUserBuffer(buf);
  return true;
}
