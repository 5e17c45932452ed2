// Certificate fingerprints have one canonical form: lowercase hex SHA-256 of the DER, no separators.
import { timingSafeEqual } from 'node:crypto';
import { sha256 } from '../util/sha256.js';

/** Accepts `AB:CD:…`, `abcd…` or `ABCD…` (SHA-256 only); anything else is undefined. */
export function normalizeFingerprint(value: string): string | undefined {
  const hex = value.trim().replaceAll(':', '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) return undefined;
  if (value.includes(':') && !/^([0-9a-fA-F]{2}:){31}[0-9a-fA-F]{2}$/.test(value.trim()))
    return undefined;
  return hex;
}

export function fingerprintOfDer(der: Uint8Array): string {
  return sha256(der, 'hex');
}

/** Constant-time equality of two hex digests of the same length. */
export function digestEquals(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}
