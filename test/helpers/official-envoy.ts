// Envoy's OFFICIAL ext_authz protos (shipped in @grpc/grpc-js-xds under deps/), so integration
// tests prove wire compatibility instead of assuming it: requests are encoded with Envoy's schema
// and responses decoded with it.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

const require = createRequire(import.meta.url);
const deps = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
const INCLUDE = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(deps, d));

let root: protobuf.Root | undefined;

export function officialRoot(): protobuf.Root {
  if (root !== undefined) return root;
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => {
    // protobufjs bundles the well-known types; descriptor.proto (used by options) is a real file.
    if (target === 'google/protobuf/descriptor.proto')
      return join(dirname(require.resolve('protobufjs/package.json')), target);
    if (target.startsWith('google/protobuf/')) return target;
    for (const inc of INCLUDE) {
      const p = join(inc, target);
      try {
        require('node:fs').accessSync(p);
        return p;
      } catch {
        /* try next include path */
      }
    }
    return target;
  };
  r.loadSync(['envoy/service/auth/v3/external_auth.proto'], { keepCase: true });
  r.resolveAll();
  root = r;
  return r;
}

export const OfficialCheckRequest = () =>
  officialRoot().lookupType('envoy.service.auth.v3.CheckRequest');
export const OfficialCheckResponse = () =>
  officialRoot().lookupType('envoy.service.auth.v3.CheckResponse');

export interface EnvoyLikeRequest {
  principal?: string;
  certificate?: string; // PEM; URL-encoded here exactly as Envoy does
  headers?: Record<string, string>;
  path?: string;
  method?: string;
  host?: string;
  contextExtensions?: Record<string, string>;
  sourceAddress?: string;
}

export function envoyUrlEncodePem(pem: string): string {
  return pem.replace(
    /[\n +/=]/g,
    (c) => ({ '\n': '%0A', ' ': '%20', '+': '%2B', '/': '%2F', '=': '%3D' })[c]!,
  );
}

/** Encodes a CheckRequest shaped like the ones Envoy sends (pseudo-headers included). */
export function encodeOfficialRequest(req: EnvoyLikeRequest): Uint8Array {
  const T = OfficialCheckRequest();
  const path = req.path ?? '/orders';
  const method = req.method ?? 'GET';
  const host = req.host ?? 'orders.svc';
  const headers: Record<string, string> = {
    ':authority': host,
    ':method': method,
    ':path': path,
    ':scheme': 'https',
    'x-request-id': '7b4c44f1-0000-4000-8000-000000000000',
    ...req.headers,
  };
  const source: Record<string, unknown> = {
    address: { socket_address: { address: req.sourceAddress ?? '10.0.0.7', port_value: 35568 } },
  };
  if (req.principal !== undefined) source.principal = req.principal;
  if (req.certificate !== undefined) source.certificate = envoyUrlEncodePem(req.certificate);
  const msg = T.fromObject({
    attributes: {
      source,
      destination: {
        address: { socket_address: { address: '10.0.0.9', port_value: 8443 } },
        principal: 'spiffe://example.org/ns/default/sa/orders',
      },
      request: {
        time: { seconds: Math.floor(Date.now() / 1000), nanos: 0 },
        http: {
          id: '3915651613227659083',
          method,
          headers,
          path,
          host,
          scheme: 'https',
          protocol: 'HTTP/2',
          size: 0,
        },
      },
      context_extensions: req.contextExtensions ?? { service: 'orders' },
      metadata_context: {},
    },
  });
  return T.encode(msg).finish();
}

export interface DecodedResponse {
  status?: { code?: number; message?: string };
  ok_response?: {
    headers?: {
      header: { key: string; value: string };
      append?: { value?: boolean };
      append_action?: number;
    }[];
    headers_to_remove?: string[];
  };
  denied_response?: {
    status?: { code?: number };
    headers?: { header: { key: string; value: string } }[];
    body?: string;
  };
  // protobufjs ships the well-known types with camelCase field names, even with keepCase.
  dynamic_metadata?: { fields?: Record<string, { stringValue?: string }> };
}

/** Sends raw bytes on the Check path and decodes the answer with Envoy's official schema. */
export class EnvoyCheckClient {
  private readonly client: grpc.Client;
  constructor(address: string) {
    this.client = new grpc.Client(address, grpc.credentials.createInsecure());
  }

  checkRaw(body: Uint8Array, timeoutMs = 5000): Promise<DecodedResponse> {
    const T = OfficialCheckResponse();
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        '/envoy.service.auth.v3.Authorization/Check',
        (b: Uint8Array) => Buffer.from(b),
        (b: Buffer) =>
          T.toObject(T.decode(b), { defaults: false, longs: Number }) as DecodedResponse,
        body,
        { deadline: Date.now() + timeoutMs },
        (err, res) => (err ? reject(err) : resolve(res!)),
      );
    });
  }

  check(req: EnvoyLikeRequest): Promise<DecodedResponse> {
    return this.checkRaw(encodeOfficialRequest(req));
  }

  close(): void {
    this.client.close();
  }
}

/** Convenience views over a decoded response. */
export function reasonOf(res: DecodedResponse): string {
  if ((res.status?.code ?? 0) === 0) return 'allowed';
  return (
    res.denied_response?.headers?.find((h) => h.header.key === 'x-agent-authz-reason')?.header
      .value ?? '?'
  );
}

export function setHeaders(res: DecodedResponse): Record<string, string> {
  return Object.fromEntries(
    (res.ok_response?.headers ?? []).map((h) => [h.header.key, h.header.value]),
  );
}

export function metadataOf(res: DecodedResponse): Record<string, string> {
  return Object.fromEntries(
    Object.entries(res.dynamic_metadata?.fields ?? {}).map(([k, v]) => [k, v.stringValue ?? '']),
  );
}
