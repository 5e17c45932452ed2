// Loads the project's hand-written, Envoy-compatible protos once with protobufjs.
import protobuf from 'protobufjs';
import { join } from 'node:path';
import { protoRoot } from './paths.js';

let root: protobuf.Root | undefined;

export function schema(): protobuf.Root {
  if (root !== undefined) return root;
  const base = protoRoot();
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => {
    // google/protobuf/* well-known types ship with protobufjs itself.
    if (target.startsWith('google/protobuf/')) return target;
    return join(base, target);
  };
  r.loadSync(
    [
      'envoy/service/auth/v3/external_auth.proto',
      'envoy/service/auth/v3/attribute_context.proto',
      'grpc/health/v1/health.proto',
    ],
    { keepCase: false },
  );
  r.resolveAll();
  root = r;
  return r;
}

export function messageType(name: string): protobuf.Type {
  return schema().lookupType(name);
}
