// Peer-certificate parsing with Node's crypto, cached by PEM so the hot path never re-parses.
// Validity is NOT cached as a verdict: it is re-checked against the clock on every request,
// because Envoy does not re-validate certificates on long-lived connections.
import { X509Certificate } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { fingerprintOfDer } from './fingerprint.js';

export interface ParsedCertificate {
  readonly fingerprint: string;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  /** Issuer RDNs as Node prints them, one `K=V` per entry. */
  readonly issuerRdns: readonly string[];
  readonly issuerCn: string | undefined;
  readonly uriSans: readonly string[];
  /** A SAN value Node had to quote (it contained a separator): never a valid SPIFFE ID. */
  readonly hasSuspiciousSan: boolean;
  readonly isCa: boolean;
  readonly cert: X509Certificate;
}

export type ParseResult = { ok: true; cert: ParsedCertificate } | { ok: false };

const cache = new LRUCache<string, ParseResult>({ max: 4096 });

const MAX_PEM_CHARS = 16 * 1024;

export function parseCertificate(pem: string): ParseResult {
  // Bounded input and only successful parses are cached: distinct garbage cannot fill memory.
  if (pem.length > MAX_PEM_CHARS) return { ok: false };
  const hit = cache.get(pem);
  if (hit !== undefined) return hit;
  let result: ParseResult;
  try {
    const cert = new X509Certificate(pem);
    const issuerRdns = cert.issuer
      .split('\n')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    const cn = issuerRdns.find((r) => r.startsWith('CN='));
    const sans = splitSubjectAltName(cert.subjectAltName ?? '');
    result = {
      ok: true,
      cert: {
        fingerprint: fingerprintOfDer(cert.raw),
        notBeforeMs: Date.parse(cert.validFrom),
        notAfterMs: Date.parse(cert.validTo),
        issuerRdns,
        issuerCn: cn?.slice(3),
        uriSans: sans.filter((s) => s.startsWith('URI:')).map((s) => s.slice(4)),
        hasSuspiciousSan: sans.some((s) => s.includes('"')),
        isCa: cert.ca || basicConstraintsCa(cert.raw),
        cert,
      },
    };
  } catch {
    result = { ok: false };
  }
  if (result.ok) cache.set(pem, result);
  return result;
}

// Node quotes a SAN value that contains ", " (CVE-2021-44532 fix), so splitting on ", " outside
// quotes is safe; a quoted value is flagged rather than unescaped.
function splitSubjectAltName(san: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < san.length; i++) {
    const c = san[i]!;
    if (c === '"') quoted = !quoted;
    if (!quoted && c === ',' && san[i + 1] === ' ') {
      out.push(cur);
      cur = '';
      i++;
      continue;
    }
    cur += c;
  }
  if (cur !== '') out.push(cur);
  return out;
}

// OpenSSL (and so Node's `ca`) only reports CA when keyCertSign is also set; a leaf that merely
// claims cA=TRUE must still be refused (X.509-SVID), so read basicConstraints from the DER.
const BASIC_CONSTRAINTS_OID = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x13]);

export function basicConstraintsCa(der: Buffer): boolean {
  // Every occurrence is checked, so bytes that merely look like the OID earlier in the
  // certificate cannot hide the real extension (fail closed: any cA=TRUE counts).
  for (
    let at = der.indexOf(BASIC_CONSTRAINTS_OID);
    at !== -1;
    at = der.indexOf(BASIC_CONSTRAINTS_OID, at + 1)
  ) {
    let i = at + BASIC_CONSTRAINTS_OID.length;
    if (der[i] === 0x01 && der[i + 1] === 0x01) i += 3; // critical flag
    if (der[i] !== 0x04) continue; // extnValue OCTET STRING
    i += 2;
    if (der[i] !== 0x30) continue; // BasicConstraints SEQUENCE
    const len = der[i + 1]!;
    i += 2;
    if (len >= 3 && der[i] === 0x01 && der[i + 1] === 0x01 && der[i + 2] !== 0x00) return true;
  }
  return false;
}

/** A trusted-issuer entry is either a full DN ("CN=x,O=y", any order) or just the issuer CN. */
export function issuerMatches(cert: ParsedCertificate, trusted: readonly string[]): boolean {
  for (const entry of trusted) {
    if (!entry.includes('=')) {
      if (cert.issuerCn === entry) return true;
      continue;
    }
    const want = entry
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    if (want.length === cert.issuerRdns.length && want.every((r) => cert.issuerRdns.includes(r)))
      return true;
  }
  return false;
}

/** Signature check against CA certificates (when a trusted CA bundle is configured). */
export function issuedByAny(cert: ParsedCertificate, cas: readonly X509Certificate[]): boolean {
  return cas.some((ca) => cert.cert.checkIssued(ca) && cert.cert.verify(ca.publicKey));
}

export type ValidityVerdict = 'valid' | 'not_yet_valid' | 'expired';

export function checkValidity(
  cert: ParsedCertificate,
  nowMs: number,
  skewMs: number,
): ValidityVerdict {
  if (!Number.isFinite(cert.notBeforeMs) || !Number.isFinite(cert.notAfterMs)) return 'expired';
  if (nowMs + skewMs < cert.notBeforeMs) return 'not_yet_valid';
  if (nowMs - skewMs >= cert.notAfterMs) return 'expired';
  return 'valid';
}

/** Loads a PEM bundle of CA certificates. */
export function loadCaBundle(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b));
}
