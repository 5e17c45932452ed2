// Strict SPIFFE ID parsing (SPIFFE-ID.md): one parser for principals, headers, XFCC, JWT-SVID
// subjects and registry records, so every path accepts and rejects exactly the same strings.

import { Doorkeeper } from '../util/doorkeeper.js';

export type SpiffeIdResult =
  | { readonly ok: true; readonly trustDomain: string; readonly path: string }
  | { readonly ok: false; readonly error: string };

const MAX_ID_BYTES = 2048;
const MAX_TD_BYTES = 255;
const TD_CHARS = /^[a-z0-9._-]+$/;
const SEGMENT_CHARS = /^[A-Za-z0-9._-]+$/;
const PREFIX = 'spiffe://';

/**
 * Parses a workload SPIFFE ID. The scheme must be exactly `spiffe://` (lowercase: we do not
 * normalise case anywhere, so a registry entry and a request can never disagree on it), the trust
 * domain lowercase `[a-z0-9._-]`, and the path non-empty with `[A-Za-z0-9._-]` segments. Ports,
 * userinfo, queries, fragments, percent-encoding, empty or dot segments and a trailing `/` are
 * all rejected by the character rules.
 */
export function parseSpiffeId(id: string): SpiffeIdResult {
  // Principals repeat on every request from the same workload: remember answers for IDs that
  // come back (bounded; results are immutable and depend on nothing but the string). IDs seen
  // once are not kept, so a stream of distinct IDs leaves no garbage to promote.
  const hit = recent.get(id);
  if (hit !== undefined) return hit;
  const result = parseSpiffeIdUncached(id);
  if (id.length <= MAX_ID_BYTES && seen.seenBefore(id)) {
    if (recent.size >= RECENT_MAX) recent.clear();
    recent.set(id, result);
  }
  return result;
}

const RECENT_MAX = 4096;
const recent = new Map<string, SpiffeIdResult>();
const seen = new Doorkeeper(4096);

/** `parseSpiffeId` without the cache: for strings validated once (registry records). */
export function parseSpiffeIdUncached(id: string): SpiffeIdResult {
  if (Buffer.byteLength(id, 'utf8') > MAX_ID_BYTES) return fail('longer than 2048 bytes');
  if (!id.startsWith(PREFIX)) return fail('scheme is missing or invalid');
  const rest = id.slice(PREFIX.length);
  const slash = rest.indexOf('/');
  const td = slash === -1 ? rest : rest.slice(0, slash);
  if (td === '') return fail('trust domain is missing');
  if (td.length > MAX_TD_BYTES) return fail('trust domain is longer than 255 bytes');
  if (!TD_CHARS.test(td)) return fail('trust domain has characters outside [a-z0-9._-]');
  if (slash === -1) return fail('a workload ID needs a path');
  const path = rest.slice(slash);
  if (path.endsWith('/')) return fail('path cannot have a trailing slash');
  const segments = path.slice(1).split('/');
  for (const s of segments) {
    if (s === '') return fail('path cannot contain empty segments');
    if (s === '.' || s === '..') return fail('path cannot contain dot segments');
    if (!SEGMENT_CHARS.test(s)) return fail('path has characters outside [A-Za-z0-9._-]');
  }
  return { ok: true, trustDomain: td, path };
}

function fail(error: string): SpiffeIdResult {
  return { ok: false, error };
}

/** Exact trust-domain membership: never a prefix or suffix match. */
export function isTrustedDomain(trustDomain: string, trusted: ReadonlySet<string>): boolean {
  return trusted.has(trustDomain);
}
