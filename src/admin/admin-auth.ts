// Who may call the admin API: an API key of scope `admin` from the registry, or the bootstrap
// admin key whose digest (never the key) is in config. Keys arrive as `Authorization: Bearer` or
// `x-api-key`. Every failure is the same 401 so the answer does not reveal which part was wrong;
// a valid key of another scope is 403.
import type { IncomingHttpHeaders } from 'node:http';
import { digestApiKey, keyIsUsable, parseApiKey } from '../credentials/api-key.js';
import { digestEquals } from '../credentials/fingerprint.js';
import type { RegistryReader } from '../registry/registry.js';
import { AdminError, toAdminError } from './admin-error.js';
import type { Actor } from './service-context.js';

// Compared against when there is nothing to compare with, so every path costs one digest compare.
const DUMMY_DIGEST = '0'.repeat(64);

export interface AdminAuthOptions {
  /** Hex SHA-256 of the bootstrap admin key (config admin_key_digest). */
  readonly bootstrapDigest?: string | undefined;
  /** When set, the bootstrap key must read `aak_<id>.<secret>` (config admin_key_id). */
  readonly bootstrapKeyId?: string | undefined;
  readonly now?: () => number;
}

export class AdminAuthenticator {
  constructor(
    private readonly registry: RegistryReader,
    private readonly opts: AdminAuthOptions = {},
  ) {}

  /** The acting principal for the audit trail, or AdminError unauthorized / forbidden. */
  async authenticate(headers: IncomingHttpHeaders): Promise<Actor> {
    const presented = presentedKey(headers);
    if (presented === undefined) throw unauthorized();
    const digest = digestApiKey(presented);
    const parsed = parseApiKey(presented);

    const boot = this.opts.bootstrapDigest;
    if (boot !== undefined) {
      const idOk =
        this.opts.bootstrapKeyId === undefined || parsed?.keyId === this.opts.bootstrapKeyId;
      if (digestEquals(digest, boot) && idOk)
        return `bootstrap:${this.opts.bootstrapKeyId ?? 'admin'}`;
    }
    if (parsed === undefined) {
      digestEquals(digest, DUMMY_DIGEST);
      throw unauthorized();
    }
    // Read the store, not the cache: a revoked admin key must stop working at once.
    let key;
    try {
      key = await this.registry.getKey(parsed.keyId);
    } catch (err) {
      throw toAdminError(err);
    }
    const matches = digestEquals(digest, key?.digest ?? DUMMY_DIGEST);
    const now = this.opts.now?.() ?? Date.now();
    if (key === undefined || !matches || !keyIsUsable(key, now)) throw unauthorized();
    if (key.scope !== 'admin')
      throw new AdminError('forbidden', 'this key does not have the admin scope');
    return `key:${key.key_id}`;
  }
}

function unauthorized(): AdminError {
  return new AdminError('unauthorized', 'an API key with the admin scope is required');
}

/** Bearer token or x-api-key; both at once must agree, so a proxy cannot smuggle a second key. */
function presentedKey(headers: IncomingHttpHeaders): string | undefined {
  const auth = headers.authorization;
  const bearer = auth === undefined ? undefined : /^Bearer\s+(\S+)\s*$/i.exec(auth)?.[1];
  if (auth !== undefined && bearer === undefined) return undefined;
  const raw = headers['x-api-key'];
  if (Array.isArray(raw)) return undefined;
  const header = raw?.trim();
  if (bearer !== undefined && header !== undefined && bearer !== header) return undefined;
  const key = bearer ?? header;
  return key === undefined || key === '' ? undefined : key;
}
