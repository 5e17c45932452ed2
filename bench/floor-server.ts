// The transport floor: agent-authz's h2c gRPC listener, with the server's default limits,
// answering every Check with a constant allow, with no decoding, decision, metrics or audit. What
// it costs at a given rate is what the transport costs before agent-authz does any work; it runs
// with agent-authz's V8 flags.
// usage: node <flags> --import tsx bench/floor-server.ts PORT
import { CHECK_PATH } from '../src/server/check-route.js';
import { GrpcH2cServer } from '../src/server/h2c/server.js';

// CheckResponse { status: {} }: status code 0 (OK), nothing else.
const ALLOW = Buffer.from([0x0a, 0x00]);

const server = new GrpcH2cServer(new Map([[CHECK_PATH, { kind: 'unary', handle: () => ALLOW }]]), {
  maxMessageBytes: 4 * 1024 * 1024,
  maxConcurrentStreams: 4096, // what the server uses with the default max_in_flight
  keepaliveMs: 30_000,
  keepaliveTimeoutMs: 10_000,
  maxConnectionAgeMs: 15 * 60_000,
  maxConnectionAgeGraceMs: 30_000,
  maxConnections: 4096,
  maxHeaderListSize: 65_536,
  maxBufferedBytes: 64 * 1024 * 1024,
  resetBurst: 1000,
  resetRate: 100,
  streamIdleTimeoutMs: 30_000,
});
await server.listen('127.0.0.1', Number(process.argv[2] ?? '0'));
process.on('SIGTERM', () => void server.close(1000).then(() => process.exit(0)));
