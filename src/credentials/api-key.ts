// Credential 5, API keys (`key_bound` / `self_declared`). A key reads `aak_<key_id>.<secret>`: the
// key id finds the record without storing the secret; only SHA-256(key) is stored and compared in
// constant time. Unknown, wrong, revoked and expired keys all produce the same answer.
import { randomBytes } from 'node:crypto';
import { sha256 } from '../util/sha256.js';
import type { RequestFacts } from '../check/facts.js';
import type { ApiKey } from '../registry/records.js';
import type { RegistryReader } from '../registry/registry.js';
import { ABSENT, invalid, type CredentialResult, type CredentialVerifier } from './credential.js';
import { digestEquals } from './fingerprint.js';

export const KEY_PREFIX = 'aak_';
const FORMAT = /^aak_([A-Za-z0-9][A-Za-z0-9._:-]{0,127})\.([A-Za-z0-9_-]{32,128})$/;
// Compared against when the key id is unknown, so that path costs the same as a wrong secret.
const DUMMY_DIGEST = '0'.repeat(64);

export function digestApiKey(key: string): string {
  return sha256(key, 'hex');
}

export function parseApiKey(key: string): { keyId: string } | undefined {
  const m = FORMAT.exec(key);
  return m === null ? undefined : { keyId: m[1]! };
}

/** Mints a new key; the caller shows `secret` once and stores only `digest`. */
export function mintApiKey(keyId?: string): { keyId: string; secret: string; digest: string } {
  const id = keyId ?? `key_${randomBytes(8).toString('hex')}`;
  const secret = `${KEY_PREFIX}${id}.${randomBytes(32).toString('base64url')}`;
  return { keyId: id, secret, digest: digestApiKey(secret) };
}

export function keyIsUsable(key: ApiKey, nowMs: number): boolean {
  if (key.status !== 'active') return false;
  if (key.expires_at !== undefined && !(nowMs < Date.parse(key.expires_at))) return false;
  return true;
}

export class ApiKeyVerifier implements CredentialVerifier {
  readonly kind = 'api_key';

  constructor(private readonly registry: RegistryReader) {}

  verify(facts: RequestFacts, nowMs: number): CredentialResult | Promise<CredentialResult> {
    const presented = facts.headers.get('x-api-key');
    if (presented === undefined) return ABSENT;
    const parsed = parseApiKey(presented);
    const digest = digestApiKey(presented);
    if (parsed === undefined) {
      digestEquals(digest, DUMMY_DIGEST);
      return invalid('invalid_api_key');
    }
    // Registry errors propagate: the pipeline turns them into registry_unavailable (503).
    // A cached key answers synchronously.
    const key = this.registry.getKey(parsed.keyId);
    return key instanceof Promise
      ? key.then((k) => judgeKey(k, digest, nowMs))
      : judgeKey(key, digest, nowMs);
  }
}

function judgeKey(key: ApiKey | undefined, digest: string, nowMs: number): CredentialResult {
  const matches = digestEquals(digest, key?.digest ?? DUMMY_DIGEST);
  if (key === undefined || !matches || !keyIsUsable(key, nowMs)) return invalid('invalid_api_key');
  if (key.scope !== 'evaluate' && key.scope !== 'admin') return invalid('key_scope_insufficient');
  return { status: 'api_key', key };
}
