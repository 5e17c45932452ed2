// The admin API's route table: one line per route, so docs/admin-api.openapi.yaml can be checked
// against it by a test. Handlers only translate HTTP to RegistryService calls and back.
import { AdminError } from './admin-error.js';
import { publicKey } from './key-service.js';
import type { RegistryService } from './registry-service.js';
import type { Actor } from './service-context.js';
import { isStatusAction } from './status-transitions.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RouteInput {
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** Parsed JSON body; undefined when the route takes none or none was sent. */
  readonly body: unknown;
  readonly actor: Actor;
  readonly svc: RegistryService;
}

export interface RouteResult {
  readonly status: number;
  readonly body?: unknown;
}

export interface Route {
  readonly method: Method;
  /** OpenAPI-style template: `/v1/agents/{id}`. */
  readonly path: string;
  readonly hasBody: boolean;
  readonly handle: (r: RouteInput) => Promise<RouteResult>;
}

const ok = (body: unknown): RouteResult => ({ status: 200, body });
const created = (body: unknown): RouteResult => ({ status: 201, body });
const noContent: RouteResult = { status: 204 };
const id = (r: RouteInput): string => r.params.id!;
const q = (r: RouteInput, name: string): string | undefined => r.query.get(name) ?? undefined;
const withDigest = (r: RouteInput): boolean => q(r, 'include_digest') === 'true';

function route(method: Method, path: string, handle: Route['handle']): Route {
  return { method, path, hasBody: method !== 'GET' && method !== 'DELETE', handle };
}

// Status actions share one handler; the action is the last path segment.
function statusRoute(action: string): Route {
  if (!isStatusAction(action)) throw new Error(`not a status action: ${action}`);
  return {
    method: 'POST',
    path: `/v1/agents/{id}/${action}`,
    hasBody: false,
    handle: async (r) => ok(await r.svc.agents.transition(id(r), action, r.actor)),
  };
}

export const ADMIN_ROUTES: readonly Route[] = [
  route('GET', '/v1/agents', async (r) =>
    ok({ agents: await r.svc.agents.list({ tenant: q(r, 'tenant'), status: q(r, 'status') }) }),
  ),
  route('POST', '/v1/agents', async (r) => created(await r.svc.agents.create(r.body, r.actor))),
  route('GET', '/v1/agents/{id}', async (r) => ok(await r.svc.agents.get(id(r)))),
  route('PUT', '/v1/agents/{id}', async (r) =>
    ok(await r.svc.agents.replace(id(r), r.body, r.actor)),
  ),
  route('PATCH', '/v1/agents/{id}', async (r) =>
    ok(await r.svc.agents.patch(id(r), r.body, r.actor)),
  ),
  route('DELETE', '/v1/agents/{id}', async (r) => {
    await r.svc.agents.delete(id(r), r.actor);
    return noContent;
  }),
  statusRoute('approve'),
  statusRoute('suspend'),
  statusRoute('reinstate'),
  statusRoute('revoke'),
  route('POST', '/v1/agents/{id}/rotate-certificate', async (r) =>
    ok(await r.svc.agents.rotateCertificate(id(r), r.body, r.actor)),
  ),

  route('GET', '/v1/keys', async (r) => {
    const keys = await r.svc.keys.list({ tenant: q(r, 'tenant') });
    return ok({ keys: keys.map((k) => publicKey(k, withDigest(r))) });
  }),
  route('POST', '/v1/keys', async (r) => {
    const { key, secret } = await r.svc.keys.create(r.body, r.actor);
    return created({ key: publicKey(key), secret });
  }),
  route('GET', '/v1/keys/{id}', async (r) =>
    ok(publicKey(await r.svc.keys.get(id(r)), withDigest(r))),
  ),
  route('PATCH', '/v1/keys/{id}', async (r) =>
    ok(publicKey(await r.svc.keys.patch(id(r), r.body, r.actor))),
  ),
  route('DELETE', '/v1/keys/{id}', async (r) => {
    await r.svc.keys.delete(id(r), r.actor);
    return noContent;
  }),
  {
    ...route('POST', '/v1/keys/{id}/revoke', async (r) =>
      ok(publicKey(await r.svc.keys.revoke(id(r), r.actor))),
    ),
    hasBody: false,
  },

  route('GET', '/v1/tenants', async (r) => ok({ tenants: await r.svc.tenants.list() })),
  route('POST', '/v1/tenants', async (r) => created(await r.svc.tenants.create(r.body, r.actor))),
  route('GET', '/v1/tenants/{id}', async (r) => ok(await r.svc.tenants.get(id(r)))),
  route('PUT', '/v1/tenants/{id}', async (r) =>
    ok(await r.svc.tenants.replace(id(r), r.body, r.actor)),
  ),
  route('DELETE', '/v1/tenants/{id}', async (r) => {
    await r.svc.tenants.delete(id(r), r.actor);
    return noContent;
  }),
];

export interface RouteMatch {
  readonly route: Route;
  readonly params: Record<string, string>;
}

/** The route for method + path; not_found for an unknown path, method_not_allowed otherwise. */
export function matchRoute(method: string, pathname: string): RouteMatch {
  const segments = pathname.split('/');
  let pathMatched = false;
  for (const r of ADMIN_ROUTES) {
    const params = matchPath(r.path.split('/'), segments);
    if (params === undefined) continue;
    pathMatched = true;
    if (r.method === method) return { route: r, params };
  }
  if (pathMatched)
    throw new AdminError('method_not_allowed', `${method} is not allowed on ${pathname}`);
  throw new AdminError('not_found', 'no such route');
}

function matchPath(template: string[], segments: string[]): Record<string, string> | undefined {
  if (template.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < template.length; i++) {
    const t = template[i]!;
    const s = segments[i]!;
    if (t.startsWith('{') && t.endsWith('}')) {
      let v: string;
      try {
        v = decodeURIComponent(s);
      } catch {
        return undefined;
      }
      if (v === '') return undefined;
      params[t.slice(1, -1)] = v;
    } else if (t !== s) return undefined;
  }
  return params;
}

/** Methods allowed on a path, for the Allow header of a 405. */
export function allowedMethods(pathname: string): Method[] {
  const segments = pathname.split('/');
  return ADMIN_ROUTES.filter((r) => matchPath(r.path.split('/'), segments) !== undefined).map(
    (r) => r.method,
  );
}
