// gRPC status codes the servers answer with, and how an error becomes one.

export const GRPC_STATUS = {
  OK: 0,
  NOT_FOUND: 5,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

/** An error may carry its own gRPC status (e.g. NOT_FOUND); anything else is INTERNAL. */
export function errorStatus(err: unknown): [status: number, message: string] {
  const status = (err as { grpcStatus?: unknown } | null)?.grpcStatus;
  return typeof status === 'number'
    ? [status, (err as Error).message || 'error']
    : [GRPC_STATUS.INTERNAL, 'internal error'];
}

/** grpc-message is percent-encoded; a lone surrogate would make encodeURIComponent throw. */
export function grpcMessageText(message: string): string {
  return encodeURIComponent(message.toWellFormed());
}
