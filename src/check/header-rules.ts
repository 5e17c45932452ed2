// Header hygiene before any credential is read: a control character anywhere, or a repeated
// identity header (Envoy joins repeats with ','), is denied rather than guessed at.
import type { RequestFacts } from './facts.js';
import { STRIP_ALWAYS } from './response.js';

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

// HTAB is legal in field values; every other C0 control and DEL is not. U+FFFD is what Envoy
// substitutes for invalid UTF-8, so an identity value containing it was not what the client sent.
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;
const REPLACEMENT = /[\ufffd]/;

/** Headers a decision reads besides the identity headers: client certificate and trace context. */
const READ_ALSO = ['x-forwarded-client-cert', 'traceparent'];
const KEPT = new Set<string>([...IDENTITY_HEADERS, ...READ_ALSO, ...STRIP_ALWAYS]);
const STRIPPED = new Set<string>(STRIP_ALWAYS);

/**
 * Whether the decoder keeps a (lower-cased) header in RequestFacts: one that a verifier, the
 * pipeline or the audit record reads, or that an allow strips — the credentials, every x-agent-*
 * header, and their underscore spellings (see headersToRemove). Other headers are only scanned
 * for control characters: no string is made of their values.
 */
export function keepsHeader(name: string): boolean {
  if (KEPT.has(name)) return true;
  const dashed = name.includes('_') ? name.replaceAll('_', '-') : name;
  return dashed.startsWith('x-agent-') || (dashed !== name && STRIPPED.has(dashed));
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
