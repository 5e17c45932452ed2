// The Check method as a route: it answers a CheckResponse whatever happens — broken framing, an
// undecodable message, a handler that throws — because a gRPC error would hand the decision to
// Envoy's failure_mode_allow.
import { randomUUID } from 'node:crypto';
import { deny } from '../check/decision.js';
import type { RequestFacts } from '../check/facts.js';
import { buildResponse } from '../proto/check-response.js';
import { decodeCheckRequest, type DecodeFailure } from '../proto/decode-check-request.js';
import { encodeCheckResponse } from '../proto/encode-check-response.js';
import type { CheckHandler } from './check-handler.js';
import type { UnaryRoute } from './grpc/routes.js';

export const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';

const UNFRAMED: DecodeFailure = { malformed: true, detail: 'invalid gRPC message framing' };

export function checkRoute(handler: CheckHandler): UnaryRoute {
  return {
    kind: 'unary',
    handle: (message) =>
      checkSafely(handler, message === undefined ? UNFRAMED : decodeCheckRequest(message)),
  };
}

/** check() never throws or rejects by design; if it ever does, the answer is still a deny. */
export function checkSafely(
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

function internalErrorResponse(): Buffer {
  return encodeCheckResponse(
    buildResponse(deny('internal_error'), {
      decisionId: randomUUID(),
      mode: 'enforce',
      facts: undefined,
    }),
  );
}
