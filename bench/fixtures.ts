// Bench fixtures: the registry records, credentials and pre-encoded CheckRequests for every
// measured path. Requests are encoded with Envoy's OFFICIAL protos and shaped like what an Istio
// sidecar sends (~1 KB: pseudo-headers, x-request-id, XFCC, user-agent, B3/W3C trace headers).
import { createCa, issueLeaf } from '../test/helpers/certs.js';
import { makeKey, type TestKey } from '../test/helpers/idp-servers.js';
import { encodeOfficialRequest, type EnvoyLikeRequest } from '../test/helpers/official-envoy.js';
import { mintApiKey } from '../src/credentials/api-key.js';
import type { Agent, ApiKey, Tenant } from '../src/registry/records.js';

export const TENANT = 'bench';
export const TRUST_DOMAIN = 'example.org';
export const CA_CN = 'agent-authz bench CA';
export const JWT_AUDIENCE = 'agent-authz-bench';

export type PathName = 'spiffe' | 'pki' | 'api_key' | 'jwt_rs256' | 'jwt_es256';
const ALL_HIT_PATHS: readonly PathName[] = ['spiffe', 'pki', 'api_key', 'jwt_rs256', 'jwt_es256'];
/** Every cache-hit path, or the comma-separated subset in BENCH_PATHS (for quicker A/B runs). */
export const HIT_PATHS: readonly PathName[] =
  process.env.BENCH_PATHS === undefined
    ? ALL_HIT_PATHS
    : ALL_HIT_PATHS.filter((p) => process.env.BENCH_PATHS!.split(',').includes(p));

export interface Fixtures {
  readonly tenant: Tenant;
  readonly agents: Agent[];
  readonly keys: ApiKey[];
  /** One pre-encoded CheckRequest per cache-hit path, each expected to be allowed. */
  readonly bodies: Record<PathName, Uint8Array>;
  readonly jwtKeys: TestKey[];
}

const UA =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36';

/** Headers an Istio sidecar adds to a typical inbound request (values are realistic, not real). */
export function istioHeaders(spiffeId: string, n: number): Record<string, string> {
  const hex = ((n * 2654435761) >>> 0).toString(16).padStart(8, '0');
  return {
    'user-agent': UA,
    accept: 'application/json, text/plain, */*',
    'accept-encoding': 'gzip, deflate, br',
    'x-forwarded-proto': 'https',
    'x-forwarded-for': '10.0.0.7',
    'x-envoy-attempt-count': '1',
    'x-envoy-internal': 'true',
    'x-b3-traceid': `463ac35c9f6413ad48485a39${hex}`,
    'x-b3-spanid': `a2fb4a1d${hex}`,
    'x-b3-sampled': '0',
    traceparent: `00-463ac35c9f6413ad48485a39${hex}-a2fb4a1d${hex}-00`,
    'x-forwarded-client-cert': `By=spiffe://${TRUST_DOMAIN}/ns/default/sa/orders;Hash=2f0a9e3c1b7d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b;Subject="";URI=${spiffeId}`,
  };
}

function request(spiffeId: string, extra: Partial<EnvoyLikeRequest>, n = 0): Uint8Array {
  return encodeOfficialRequest({
    path: '/api/v1/orders/12345?expand=items',
    method: 'GET',
    host: 'orders.default.svc.cluster.local',
    ...extra,
    headers: { ...istioHeaders(spiffeId, n), ...extra.headers },
  });
}

export function bulkSpiffeId(i: number): string {
  return `spiffe://${TRUST_DOMAIN}/ns/bulk/sa/agent-${i}`;
}

export function bulkAgent(i: number): Agent {
  return {
    agent_id: `bulk-${i}`,
    tenant: TENANT,
    agent_role: 'worker',
    status: 'approved',
    credential_type: 'spiffe',
    spiffe_id: bulkSpiffeId(i),
  };
}

/** A CheckRequest whose only credential is the source principal of bulk agent i (cache-miss path). */
export function bulkRequest(i: number): Uint8Array {
  const id = bulkSpiffeId(i);
  return request(id, { principal: id }, i);
}

export async function buildFixtures(jwtIssuer: string): Promise<Fixtures> {
  const spiffeId = `spiffe://${TRUST_DOMAIN}/ns/bench/sa/spiffe-agent`;
  const pkiId = `spiffe://${TRUST_DOMAIN}/ns/bench/sa/pki-agent`;
  const ca = await createCa(CA_CN, 'agent-authz bench');
  const leaf = await issueLeaf(ca, { uris: [pkiId] });
  const minted = mintApiKey('bench-key');
  const rs = await makeKey('RS256', 'bench-rs');
  const es = await makeKey('ES256', 'bench-es');
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const token = (k: TestKey, sub: string) =>
    k.sign({ iss: jwtIssuer, aud: JWT_AUDIENCE, sub, exp });
  const agent = (id: string, extra: Partial<Agent>): Agent => ({
    agent_id: id,
    tenant: TENANT,
    agent_role: 'worker',
    status: 'approved',
    ...extra,
  });
  const agents: Agent[] = [
    agent('bench-spiffe', { credential_type: 'spiffe', spiffe_id: spiffeId }),
    agent('bench-pki', { credential_type: 'pki', cert_fingerprint: leaf.fingerprint }),
    agent('bench-key-agent', { credential_type: 'api_key', bound_key_id: 'bench-key' }),
    agent('bench-jwt-rs', {
      credential_type: 'jwt_oidc',
      oidc_issuer: jwtIssuer,
      oidc_subject: 'agent-rs',
    }),
    agent('bench-jwt-es', {
      credential_type: 'jwt_oidc',
      oidc_issuer: jwtIssuer,
      oidc_subject: 'agent-es',
    }),
  ];
  const keys: ApiKey[] = [
    {
      key_id: 'bench-key',
      tenant: TENANT,
      scope: 'evaluate',
      digest: minted.digest,
      bound_agent_id: 'bench-key-agent',
      status: 'active',
    },
  ];
  // The token and API-key paths come through the ingress gateway: no mesh principal.
  const noMesh = 'spiffe://example.org/ns/istio-system/sa/ingressgateway';
  const bodies: Record<PathName, Uint8Array> = {
    spiffe: request(spiffeId, { principal: spiffeId }),
    pki: request(pkiId, { principal: pkiId, certificate: leaf.pem }),
    api_key: request(noMesh, { headers: { 'x-api-key': minted.secret } }),
    jwt_rs256: request(noMesh, {
      headers: { authorization: `Bearer ${await token(rs, 'agent-rs')}` },
    }),
    jwt_es256: request(noMesh, {
      headers: { authorization: `Bearer ${await token(es, 'agent-es')}` },
    }),
  };
  return {
    tenant: { tenant_id: TENANT, require_agent_id: false },
    agents,
    keys,
    bodies,
    jwtKeys: [rs, es],
  };
}

/** gRPC framing: 1 byte "not compressed" + 4 bytes big-endian length, then the message. */
export function grpcFrame(body: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + body.length);
  out.writeUInt32BE(body.length, 1);
  out.set(body, 5);
  return out;
}
