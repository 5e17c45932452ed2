// grpc.health.v1.Health (Check and Watch) for Kubernetes probes and Envoy health checks. The empty
// service name and the Authorization service share one status: SERVING only when ready to decide.
import * as grpc from '@grpc/grpc-js';
import { messageType } from '../proto/schema.js';

export const AUTHZ_SERVICE = 'envoy.service.auth.v3.Authorization';
const SERVING = 1;
const NOT_SERVING = 2;
const SERVICE_UNKNOWN = 3;

type Status = typeof SERVING | typeof NOT_SERVING;

export class HealthService {
  private status: Status = NOT_SERVING;
  /** Re-evaluated on every Check, so probes and /readyz never disagree (Watch follows the tick). */
  constructor(private readonly probe?: () => boolean) {}

  private readonly watchers = new Set<
    grpc.ServerWritableStream<{ service: string }, { status: number }>
  >();

  set(serving: boolean): void {
    const next: Status = serving ? SERVING : NOT_SERVING;
    if (next === this.status) return;
    this.status = next;
    for (const w of this.watchers) w.write({ status: next });
  }

  get serving(): boolean {
    return this.status === SERVING;
  }

  register(server: grpc.Server): void {
    const req = messageType('grpc.health.v1.HealthCheckRequest');
    const res = messageType('grpc.health.v1.HealthCheckResponse');
    const common = {
      requestSerialize: (m: object) => Buffer.from(req.encode(m).finish()),
      requestDeserialize: (b: Buffer) =>
        req.toObject(req.decode(b), { defaults: true }) as { service: string },
      responseSerialize: (m: object) => Buffer.from(res.encode(m).finish()),
      responseDeserialize: (b: Buffer) =>
        res.toObject(res.decode(b), { defaults: true }) as { status: number },
    };
    const definition: grpc.ServiceDefinition = {
      Check: {
        path: '/grpc.health.v1.Health/Check',
        requestStream: false,
        responseStream: false,
        ...common,
      },
      Watch: {
        path: '/grpc.health.v1.Health/Watch',
        requestStream: false,
        responseStream: true,
        ...common,
      },
    };
    server.addService(definition, {
      Check: (
        call: grpc.ServerUnaryCall<{ service: string }, { status: number }>,
        cb: grpc.sendUnaryData<{ status: number }>,
      ) => {
        if (!this.known(call.request.service)) {
          cb({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
          return;
        }
        if (this.probe !== undefined) this.set(this.probe());
        cb(null, { status: this.status });
      },
      Watch: (call: grpc.ServerWritableStream<{ service: string }, { status: number }>) => {
        if (!this.known(call.request.service)) {
          call.write({ status: SERVICE_UNKNOWN });
          return;
        }
        call.write({ status: this.status });
        this.watchers.add(call);
        const done = () => this.watchers.delete(call);
        call.on('cancelled', done);
        call.on('close', done);
      },
    });
  }

  /** Ends open Watch streams (on shutdown, after NOT_SERVING was sent). */
  endWatches(): void {
    for (const w of this.watchers) w.end();
    this.watchers.clear();
  }

  private known(service: string): boolean {
    return service === '' || service === AUTHZ_SERVICE;
  }
}
