// Header hygiene before any credential is read: a control character anywhere, or a repeated
// identity header (Envoy joins repeats with ','), is denied rather than guessed at.
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

// HTAB is legal in field values; every other C0 control and DEL is not. U+FFFD is what Envoy
// substitutes for invalid UTF-8, so an identity value containing it was not what the client sent.
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;
const REPLACEMENT = /[\ufffd]/;

export function headersAreClean(facts: RequestFacts): boolean {
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
