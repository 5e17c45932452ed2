// Real HTTP identity providers on 127.0.0.1:0 for tests: a JWKS + OIDC discovery server that can
// rotate keys and fail, a Conjur whoami endpoint, and run-time signing keys made with jose.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import {
  SignJWT,
  exportJWK,
  generateKeyPair,
  type JSONWebKeySet,
  type JWK,
  type JWTPayload,
} from 'jose';

/** up: answer; error: HTTP 500; close: drop the connection; hang: never answer. */
export type ServerMode = 'up' | 'error' | 'close' | 'hang';

async function listen(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ server: Server; base: string }> {
  const server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { server, base: `http://127.0.0.1:${port}` };
}

async function stop(server: Server): Promise<void> {
  // Hanging requests would keep close() waiting forever.
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Applies a failure mode; returns true when the request was handled (failed) here. */
function fail(mode: ServerMode, req: IncomingMessage, res: ServerResponse): boolean {
  if (mode === 'error') {
    res.writeHead(500, { 'content-type': 'text/plain' }).end('boom');
    return true;
  }
  if (mode === 'close') {
    req.socket.destroy();
    return true;
  }
  return mode === 'hang';
}

export interface TestKey {
  readonly kid: string;
  readonly alg: 'RS256' | 'ES256' | 'PS256' | 'EdDSA';
  readonly publicJwk: JWK;
  /** Signs claims; `header` overrides/extends the protected header (e.g. another kid, a typ). */
  sign(claims: JWTPayload, header?: Record<string, unknown>): Promise<string>;
}

export async function makeKey(alg: TestKey['alg'], kid: string = randomUUID()): Promise<TestKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return {
    kid,
    alg,
    publicJwk,
    sign: (claims, header = {}) =>
      new SignJWT(claims).setProtectedHeader({ alg, kid, ...header }).sign(privateKey),
  };
}

export function jwksOf(...keys: TestKey[]): JSONWebKeySet {
  return { keys: keys.map((k) => k.publicJwk) };
}

export interface JwksServer {
  /** Base URL; also the default issuer named by the discovery document. */
  readonly base: string;
  readonly jwksUrl: string;
  readonly discoveryUrl: string;
  /** Number of JWKS requests received (whatever the mode). */
  readonly jwksFetches: number;
  readonly discoveryFetches: number;
  setKeys(jwks: JSONWebKeySet): void;
  setMode(mode: ServerMode): void;
  /** The issuer the discovery document claims (to test a mismatch). */
  setDiscoveryIssuer(issuer: string): void;
  close(): Promise<void>;
}

export async function startJwksServer(initial: JSONWebKeySet = { keys: [] }): Promise<JwksServer> {
  let jwks = initial;
  let mode: ServerMode = 'up';
  let jwksFetches = 0;
  let discoveryFetches = 0;
  let discoveryIssuer: string | undefined;
  const { server, base } = await listen((req, res) => {
    const path = req.url ?? '/';
    if (path === '/jwks') jwksFetches += 1;
    else if (path === '/.well-known/openid-configuration') discoveryFetches += 1;
    if (fail(mode, req, res)) return;
    const json = (body: unknown): void => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (path === '/jwks') json(jwks);
    else if (path === '/.well-known/openid-configuration')
      json({ issuer: discoveryIssuer ?? base, jwks_uri: `${base}/jwks` });
    else res.writeHead(404).end();
  });
  return {
    base,
    jwksUrl: `${base}/jwks`,
    discoveryUrl: `${base}/.well-known/openid-configuration`,
    get jwksFetches() {
      return jwksFetches;
    },
    get discoveryFetches() {
      return discoveryFetches;
    },
    setKeys: (k) => {
      jwks = k;
    },
    setMode: (m) => {
      mode = m;
    },
    setDiscoveryIssuer: (i) => {
      discoveryIssuer = i;
    },
    close: () => stop(server),
  };
}

/** What Conjur's whoami answers for one token. */
export interface ConjurIdentity {
  readonly account: string;
  /** `host/<id>` for hosts, a bare name for users. */
  readonly username: string;
  /** ISO 8601; defaults to the time of the call. */
  readonly tokenIssuedAt?: string;
}

export interface ConjurServer {
  readonly url: string;
  /** Number of /whoami requests received (whatever the mode). */
  readonly calls: number;
  /** Raw tokens (base64-decoded from the Authorization header) seen, in order. */
  readonly tokensSeen: readonly string[];
  addToken(token: string, identity: ConjurIdentity): void;
  setMode(mode: ServerMode): void;
  close(): Promise<void>;
}

const TOKEN_HEADER = /^Token token="([A-Za-z0-9+/=]*)"$/;

export async function startConjurServer(): Promise<ConjurServer> {
  const identities = new Map<string, ConjurIdentity>();
  const tokensSeen: string[] = [];
  let mode: ServerMode = 'up';
  let calls = 0;
  const { server, base } = await listen((req, res) => {
    if (req.url !== '/whoami') {
      res.writeHead(404).end();
      return;
    }
    calls += 1;
    if (fail(mode, req, res)) return;
    const m = TOKEN_HEADER.exec(req.headers.authorization ?? '');
    const token = m === null ? undefined : Buffer.from(m[1]!, 'base64').toString('utf8');
    if (token !== undefined) tokensSeen.push(token);
    const identity = token === undefined ? undefined : identities.get(token);
    if (identity === undefined) {
      res.writeHead(401).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        client_ip: '127.0.0.1',
        user_agent: req.headers['user-agent'] ?? '',
        account: identity.account,
        username: identity.username,
        token_issued_at: identity.tokenIssuedAt ?? new Date().toISOString(),
      }),
    );
  });
  return {
    url: base,
    get calls() {
      return calls;
    },
    tokensSeen,
    addToken: (t, i) => {
      identities.set(t, i);
    },
    setMode: (m) => {
      mode = m;
    },
    close: () => stop(server),
  };
}
