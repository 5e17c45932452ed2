// The gRPC listener: envoy.service.auth.v3.Authorization/Check and grpc.health.v1.Health, on
// node:http2 (default) or grpc-js. Either way the request is decoded only as far as a decision needs
// and the Check method answers a CheckResponse whatever happens.
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { deny } from '../check/decision.js';
import type { RequestFacts } from '../check/facts.js';
import { buildResponse } from '../proto/check-response.js';
import { decodeCheckRequest, type DecodeFailure } from '../proto/decode-check-request.js';
import { encodeCheckResponse } from '../proto/encode-check-response.js';
import { messageType } from '../proto/schema.js';
import type { CheckHandler } from './check-handler.js';
import type { GrpcH2Options, UnaryRoute } from './grpc-h2-server.js';
import { GrpcH2cServer } from './grpc-h2c-server.js';
import type { HealthService } from './health.js';

export const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';

export interface GrpcJsOptions {
  readonly keepaliveMs: number;
  readonly keepaliveTimeoutMs: number;
  readonly maxConnectionAgeMs: number;
  readonly maxConnectionAgeGraceMs: number;
  readonly maxConcurrentStreams: number;
  readonly maxHeaderListSize: number;
}

export function createGrpcServer(
  handler: CheckHandler,
  health: HealthService,
  opts: GrpcJsOptions,
): grpc.Server {
  const server = new grpc.Server({
    // Detect half-open Envoy connections, and let Envoy rebalance after a scale-out.
    'grpc.keepalive_time_ms': opts.keepaliveMs,
    'grpc.keepalive_timeout_ms': opts.keepaliveTimeoutMs,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.max_connection_age_ms': opts.maxConnectionAgeMs,
    'grpc.max_connection_age_grace_ms': opts.maxConnectionAgeGraceMs,
    'grpc.max_concurrent_streams': opts.maxConcurrentStreams,
    'grpc.max_metadata_size': opts.maxHeaderListSize,
    'grpc.max_receive_message_length': 4 * 1024 * 1024,
    // Channelz keeps per-call counters and call trackers (~3% of a cache-hit check); nothing here
    // reads them.
    'grpc.enable_channelz': 0,
  });
  const CheckResponse = messageType('envoy.service.auth.v3.CheckResponse');
  const definition: grpc.ServiceDefinition = {
    Check: {
      path: CHECK_PATH,
      requestStream: false,
      responseStream: false,
      requestSerialize: () => {
        throw new Error('server only');
      },
      requestDeserialize: (buf: Buffer) => decodeCheckRequest(buf),
      // The handler answers with encoded bytes already.
      responseSerialize: (bytes: Buffer) => bytes,
      responseDeserialize: (buf: Buffer) => CheckResponse.decode(buf),
    },
  };
  server.addService(definition, {
    Check: (
      call: grpc.ServerUnaryCall<RequestFacts | DecodeFailure, Buffer>,
      callback: grpc.sendUnaryData<Buffer>,
    ) => {
      const res = checkSafely(handler, call.request);
      if (res instanceof Promise) void res.then((bytes) => callback(null, bytes));
      else callback(null, res);
    },
  });
  health.register(server);
  return server;
}

/** The Check route for the node:http2 transport: always answers a CheckResponse, never an error. */
export function checkRoute(handler: CheckHandler): UnaryRoute {
  return {
    kind: 'unary',
    handle: (message) =>
      checkSafely(handler, message === undefined ? UNFRAMED : decodeCheckRequest(message)),
  };
}

/** check() never throws or rejects by design; if it ever does, the answer is still a deny. */
function checkSafely(
  handler: CheckHandler,
  request: RequestFacts | DecodeFailure,
): Buffer | Promise<Buffer> {
  try {
    const res = handler.check(request);
    return res instanceof Promise ? res.then(undefined, () => internalErrorResponse()) : res;
  } catch {
    return internalErrorResponse();
  }
}

function h2Routes(handler: CheckHandler, health: HealthService) {
  return new Map([[CHECK_PATH, checkRoute(handler)], ...health.h2Routes()]);
}

/** The gRPC listener on agent-authz's own cleartext HTTP/2 (transport `h2c`). */
export function createH2cGrpcServer(
  handler: CheckHandler,
  health: HealthService,
  opts: Omit<GrpcH2Options, 'maxMessageBytes'>,
): GrpcH2cServer {
  return new GrpcH2cServer(h2Routes(handler, health), {
    maxMessageBytes: 4 * 1024 * 1024,
    ...opts,
  });
}

const UNFRAMED: DecodeFailure = { malformed: true, detail: 'invalid gRPC message framing' };

function internalErrorResponse(): Buffer {
  return encodeCheckResponse(
    buildResponse(deny('internal_error'), {
      decisionId: randomUUID(),
      mode: 'enforce',
      facts: undefined,
    }),
  );
}

export function bindGrpc(server: grpc.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err !== null) reject(err);
      else resolve(port);
    });
  });
}
