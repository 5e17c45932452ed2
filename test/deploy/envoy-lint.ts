// Config-lint for Envoy front proxies (security requirements R-1.1e and R-1.2c): schema-valid
// configs can still fail open, forward forged XFCC or skip authorization, so these rules are
// checked separately and each returns a message naming the listener it is about.

const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const EXT_AUTHZ = 'envoy.extensions.filters.http.ext_authz.v3.ExtAuthz';
const EXT_AUTHZ_PER_ROUTE = 'envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute';
const DOWNSTREAM_TLS = 'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
const HTTP_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

type Obj = Record<string, unknown>;

function obj(v: unknown): Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {};
}
function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
function typeOf(v: unknown): string {
  const url = obj(v)['@type'];
  return typeof url === 'string' ? url.slice(url.lastIndexOf('/') + 1) : '';
}

/** Every object anywhere below `v` whose `@type` is `type`. */
function findTyped(v: unknown, type: string, out: Obj[] = []): Obj[] {
  if (Array.isArray(v)) v.forEach((x) => findTyped(x, type, out));
  else if (v !== null && typeof v === 'object') {
    if (typeOf(v) === type) out.push(v as Obj);
    Object.values(v).forEach((x) => findTyped(x, type, out));
  }
  return out;
}

export function lintEnvoyConfig(cfg: unknown): string[] {
  const problems: string[] = [];
  const clusters = list(obj(obj(cfg).static_resources).clusters).map(obj);
  for (const listener of list(obj(obj(cfg).static_resources).listeners).map(obj)) {
    const name = String(listener.name);
    const address = String(obj(obj(listener.address).socket_address).address ?? '');
    for (const chain of list(listener.filter_chains).map(obj)) {
      const tls = findTyped(chain.transport_socket, DOWNSTREAM_TLS)[0];
      for (const hcm of findTyped(chain.filters, HCM)) {
        const filters = list(hcm.http_filters).map(obj);
        const authzAt = filters.findIndex((f) => typeOf(f.typed_config) === EXT_AUTHZ);
        if (authzAt < 0) {
          // Only a loopback-only listener (the demo upstream) may skip authorization.
          if (!LOOPBACK.has(address))
            problems.push(`${name}: reachable listener without ext_authz`);
          continue;
        }
        if (authzAt !== 0) problems.push(`${name}: ext_authz must be the first HTTP filter`);
        const authz = obj(filters[authzAt]!.typed_config);
        if (authz.failure_mode_allow === true) problems.push(`${name}: failure_mode_allow is true`);
        if (authz.include_peer_certificate !== true) {
          problems.push(`${name}: include_peer_certificate must be true`);
        }
        if (authz.transport_api_version !== 'V3') {
          problems.push(`${name}: transport_api_version must be V3`);
        }
        if (authz.filter_enabled !== undefined && authz.deny_at_disable === undefined) {
          problems.push(`${name}: filter_enabled without deny_at_disable allows when disabled`);
        }
        const grpc = obj(authz.grpc_service);
        if (typeof grpc.timeout !== 'string') problems.push(`${name}: ext_authz has no timeout`);
        const clusterName = obj(grpc.envoy_grpc).cluster_name;
        const cluster = clusters.find((c) => c.name === clusterName);
        if (cluster === undefined)
          problems.push(`${name}: ext_authz cluster ${String(clusterName)} missing`);
        else if (
          findTyped(cluster, HTTP_OPTIONS).every(
            (o) => !('http2_protocol_options' in obj(o.explicit_http_config)),
          )
        ) {
          problems.push(`${name}: cluster ${String(clusterName)} must speak HTTP/2 (gRPC)`);
        }
        for (const later of filters.slice(authzAt + 1)) {
          if (obj(later.typed_config).clear_route_cache === true) {
            problems.push(`${name}: ${String(later.name)} clears the route cache after ext_authz`);
          }
        }
        const xfcc = hcm.forward_client_cert_details;
        if (xfcc === 'FORWARD_ONLY' || xfcc === 'ALWAYS_FORWARD_ONLY') {
          problems.push(`${name}: forward_client_cert_details ${xfcc} passes client-supplied XFCC`);
        }
        for (const perRoute of findTyped(hcm.route_config, EXT_AUTHZ_PER_ROUTE)) {
          if (perRoute.disabled === true) problems.push(`${name}: a route disables ext_authz`);
        }
        if (tls === undefined) problems.push(`${name}: authorized listener without TLS`);
        else if (tls.require_client_certificate !== true) {
          problems.push(`${name}: TLS listener does not require client certificates`);
        }
      }
    }
  }
  return problems;
}
