// grpc.health.v1.Health (Check and Watch) for Kubernetes probes and Envoy health checks. The empty
// service name and the Authorization service share one status: SERVING only when ready to decide.
// The service is transport-neutral: it is mounted on the h2c gRPC server (default) or on grpc-js
// (AGENT_AUTHZ_GRPC_TRANSPORT=grpc-js).
import * as grpc from '@grpc/grpc-js';
import { messageType } from '../proto/schema.js';
import type { StreamRoute, UnaryRoute } from './grpc/routes.js';
import { GRPC_STATUS } from './grpc/status.js';

export const AUTHZ_SERVICE = 'envoy.service.auth.v3.Authorization';
export const HEALTH_CHECK_PATH = '/grpc.health.v1.Health/Check';
export const HEALTH_WATCH_PATH = '/grpc.health.v1.Health/Watch';
const SERVING = 1;
const NOT_SERVING = 2;
const SERVICE_UNKNOWN = 3;

type Status = typeof SERVING | typeof NOT_SERVING;

interface Watcher {
  send(status: number): void;
  end(): void;
}

export class HealthService {
  private status: Status = NOT_SERVING;
  private readonly watchers = new Set<Watcher>();

  /** Re-evaluated on every Check, so probes and /readyz never disagree (Watch follows the tick). */
  constructor(private readonly probe?: () => boolean) {}

  set(serving: boolean): void {
    const next: Status = serving ? SERVING : NOT_SERVING;
    if (next === this.status) return;
    this.status = next;
    for (const w of this.watchers) w.send(next);
  }

  get serving(): boolean {
    return this.status === SERVING;
  }

  /** Ends open Watch streams (on shutdown, after NOT_SERVING was sent). */
  endWatches(): void {
    for (const w of this.watchers) w.end();
    this.watchers.clear();
  }

  /** Routes for the h2c gRPC server. */
  h2Routes(): [string, UnaryRoute | StreamRoute][] {
    const req = messageType('grpc.health.v1.HealthCheckRequest');
    const res = messageType('grpc.health.v1.HealthCheckResponse');
    const service = (m: Buffer | undefined): string | undefined => {
      if (m === undefined) return undefined;
      try {
        return (req.toObject(req.decode(m), { defaults: true }) as { service: string }).service;
      } catch {
        return undefined;
      }
    };
    const encode = (status: number) => res.encode({ status }).finish();
    const check: UnaryRoute = {
      kind: 'unary',
      handle: (m) => {
        const name = service(m);
        if (name === undefined || !this.known(name)) throw new HealthNotFound();
        return encode(this.current());
      },
    };
    const watch: StreamRoute = {
      kind: 'stream',
      open: (m, call) => {
        const name = service(m);
        if (name === undefined || !this.known(name)) {
          call.write(encode(SERVICE_UNKNOWN));
          return;
        }
        const w: Watcher = { send: (s) => call.write(encode(s)), end: () => call.end() };
        call.write(encode(this.status));
        this.watchers.add(w);
        call.onClose(() => this.watchers.delete(w));
      },
    };
    return [
      [HEALTH_CHECK_PATH, check],
      [HEALTH_WATCH_PATH, watch],
    ];
  }

  /** The same service on grpc-js. */
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
      Check: { path: HEALTH_CHECK_PATH, requestStream: false, responseStream: false, ...common },
      Watch: { path: HEALTH_WATCH_PATH, requestStream: false, responseStream: true, ...common },
    };
    type In = { service: string };
    type Out = { status: number };
    server.addService(definition, {
      Check: (call: grpc.ServerUnaryCall<In, Out>, cb: grpc.sendUnaryData<Out>) => {
        if (!this.known(call.request.service)) {
          cb({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
          return;
        }
        cb(null, { status: this.current() });
      },
      Watch: (call: grpc.ServerWritableStream<In, Out>) => {
        if (!this.known(call.request.service)) {
          call.write({ status: SERVICE_UNKNOWN });
          return;
        }
        call.write({ status: this.status });
        const w: Watcher = { send: (s) => call.write({ status: s }), end: () => call.end() };
        this.watchers.add(w);
        const done = () => this.watchers.delete(w);
        call.on('cancelled', done);
        call.on('close', done);
      },
    });
  }

  private current(): Status {
    if (this.probe !== undefined) this.set(this.probe());
    return this.status;
  }

  private known(service: string): boolean {
    return service === '' || service === AUTHZ_SERVICE;
  }
}

/** Health Check for an unknown service answers NOT_FOUND (grpc health-checking protocol). */
export class HealthNotFound extends Error {
  readonly grpcStatus = GRPC_STATUS.NOT_FOUND;
  constructor() {
    super('unknown service');
  }
}
