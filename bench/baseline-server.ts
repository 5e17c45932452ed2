// The baseline of SPEC §9: a bare grpc-js server on the Check path that decodes every request in
// full with protobufjs and the project's proto/ schema (decode + toObject, what @grpc/proto-loader
// does), and answers a constant allow, serialized per call as any grpc-js service would.
// usage: node --import tsx bench/baseline-server.ts PORT
import * as grpc from '@grpc/grpc-js';
import { messageType } from '../src/proto/schema.js';

const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';
// @grpc/proto-loader's usual options.
const TO_OBJECT = { longs: String, enums: String, defaults: true, oneofs: true };

const port = Number(process.argv[2] ?? '0');
const CheckRequest = messageType('envoy.service.auth.v3.CheckRequest');
const CheckResponse = messageType('envoy.service.auth.v3.CheckResponse');
const ALLOW = { status: { code: 0 }, okResponse: {} };

const server = new grpc.Server();
server.addService(
  {
    Check: {
      path: CHECK_PATH,
      requestStream: false,
      responseStream: false,
      requestSerialize: (o: object) =>
        Buffer.from(CheckRequest.encode(CheckRequest.fromObject(o)).finish()),
      requestDeserialize: (b: Buffer) => CheckRequest.toObject(CheckRequest.decode(b), TO_OBJECT),
      responseSerialize: (o: object) =>
        Buffer.from(CheckResponse.encode(CheckResponse.fromObject(o)).finish()),
      responseDeserialize: (b: Buffer) =>
        CheckResponse.toObject(CheckResponse.decode(b), TO_OBJECT),
    },
  },
  {
    Check: (_call: grpc.ServerUnaryCall<object, object>, cb: grpc.sendUnaryData<object>) =>
      cb(null, ALLOW),
  },
);
server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
  if (err !== null) {
    process.stderr.write(`baseline: ${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`listening ${bound}\n`);
});
process.once('SIGTERM', () => server.forceShutdown());
