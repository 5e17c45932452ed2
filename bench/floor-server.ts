// The transport floor: agent-authz's own gRPC listener (GrpcH2Server on node:http2, the same
// options) answering every Check with a constant allow, with no decoding, decision, metrics or
// audit. What it costs at a given rate is what Node's HTTP/2 core costs before agent-authz does
// any work; it runs with agent-authz's V8 flags.
// usage: node <flags> --import tsx bench/floor-server.ts PORT
import { GrpcH2Server } from '../src/server/grpc-h2-server.js';
import { CHECK_PATH } from '../src/server/grpc-server.js';

// CheckResponse { status: {} }: status code 0 (OK), nothing else.
const ALLOW = Buffer.from([0x0a, 0x00]);

const server = new GrpcH2Server(new Map([[CHECK_PATH, { kind: 'unary', handle: () => ALLOW }]]), {
  maxMessageBytes: 4 * 1024 * 1024,
  maxConcurrentStreams: 4096, // what the server uses with the default max_in_flight
  keepaliveMs: 30_000,
  keepaliveTimeoutMs: 10_000,
  maxConnectionAgeMs: 15 * 60_000,
  maxConnectionAgeGraceMs: 30_000,
});
await server.listen('127.0.0.1', Number(process.argv[2] ?? '0'));
process.on('SIGTERM', () => void server.close(1000).then(() => process.exit(0)));
