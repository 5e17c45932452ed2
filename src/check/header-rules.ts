// Which request headers matter and how they must look: the identity headers a decision reads, the
// headers an allow sets or strips, and the hygiene rules. A leaf module (type imports only), so the
// wire decoder and the response builder can both depend on it without depending on each other.
import type { RequestFacts } from './facts.js';

export const IDENTITY_HEADERS = [
  'x-agent-id',
  'x-agent-role',
  'x-api-key',
  'x-agent-token',
  'x-spiffe-id',
  'x-client-cert-fingerprint',
  'x-client-cert-san',
  'authorization',
] as const;

/** What an allow sets upstream; the decision id always, the identity only with one. */
export const SET_HEADERS = [
  'x-agent-id',
  'x-agent-tenant',
  'x-agent-role',
  'x-agent-identity-method',
  'x-agent-authz-decision-id',
  'x-agent-authz-dry-run-reason',
] as const;

/** Credentials never travel upstream (secrets) and neither do spoofable identity claims. */
export const STRIP_ALWAYS = [
  'x-api-key',
  'x-agent-token',
  'x-spiffe-id',
  'x-client-cert-fingerprint',
  'x-client-cert-san',
  'client-cert',
  'client-cert-chain',
];

// HTAB is legal in field values; every other C0 control and DEL is not. U+FFFD is what Envoy
// substitutes for invalid UTF-8, so an identity value containing it was not what the client sent.
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;
const REPLACEMENT = /[\ufffd]/;

/** Headers a decision reads besides the identity headers: client certificate and trace context. */
const READ_ALSO = ['x-forwarded-client-cert', 'traceparent'];
const KEPT = new Set<string>([...IDENTITY_HEADERS, ...READ_ALSO, ...STRIP_ALWAYS]);
const STRIPPED: ReadonlySet<string> = new Set(STRIP_ALWAYS);

/** Whether a (lower-cased) header is one of STRIP_ALWAYS, spelled exactly so. */
export function isAlwaysStripped(name: string): boolean {
  return STRIPPED.has(name);
}

/**
 * Whether a (lower-cased) header is an identity claim by its spelling: any x-agent-* header, or an
 * underscore spelling of either that or a STRIP_ALWAYS header (some upstream frameworks normalise
 * underscores to dashes). An allow strips these unless it sets them itself.
 */
export function isIdentitySpelling(name: string): boolean {
  const dashed = name.includes('_') ? name.replaceAll('_', '-') : name;
  return dashed.startsWith('x-agent-') || (dashed !== name && STRIPPED.has(dashed));
}

/**
 * Whether the decoder keeps a (lower-cased) header in RequestFacts: one that a verifier, the
 * pipeline or the audit record reads, or that an allow strips — the credentials, every x-agent-*
 * header, and their underscore spellings (see headersToRemove). Other headers are only scanned
 * for control characters: no string is made of their values.
 */
export function keepsHeader(name: string): boolean {
  return KEPT.has(name) || isIdentitySpelling(name);
}

export function headersAreClean(facts: RequestFacts): boolean {
  if (facts.controlCharInHeader === true) return false;
  for (const value of facts.headers.values()) if (CONTROL.test(value)) return false;
  for (const name of IDENTITY_HEADERS) {
    const v = facts.headers.get(name);
    if (v === undefined) continue;
    // Authorization schemes such as SigV4 or Digest legitimately contain commas; only a bearer
    // token (a possible agent JWT) must be a single value.
    if (name === 'authorization' && !/^bearer /i.test(v)) continue;
    if (v.includes(',') || REPLACEMENT.test(v)) return false;
    if (name !== 'authorization' && v.trim() === '') return false;
  }
  return true;
}
