// The conventional fallback transport (AGENT_AUTHZ_GRPC_TRANSPORT=grpc-js): the same Check and
// health methods on @grpc/grpc-js, whose HTTP/2 is Node's nghttp2 with its own flood protection.
import * as grpc from '@grpc/grpc-js';
import type { RequestFacts } from '../check/facts.js';
import { decodeCheckRequest, type DecodeFailure } from '../proto/decode-check-request.js';
import { messageType } from '../proto/schema.js';
import type { CheckHandler } from './check-handler.js';
import { CHECK_PATH, checkSafely } from './check-route.js';
import type { HealthService } from './health.js';

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

export function bindGrpc(server: grpc.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err !== null) reject(err);
      else resolve(port);
    });
  });
}
