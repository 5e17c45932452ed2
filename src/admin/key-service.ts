// API key operations shared by the admin HTTP API and the CLI. A key's secret exists only in the
// answer to `create`: the store keeps its SHA-256 digest, and the digest is left out of every
// listing unless asked for (it is not a secret, but it is useless to readers and invites misuse).
import { z } from 'zod';
import { mintApiKey } from '../credentials/api-key.js';
import { KEY_SCOPES, keySchema, type ApiKey } from '../registry/records.js';
import { AdminError, invalidRequest } from './admin-error.js';
import { asObject, mergePatch, parseRecord, refuseFields } from './record-input.js';
import {
  audited,
  notFound,
  nowIso,
  reading,
  type Actor,
  type ServiceContext,
} from './service-context.js';

/** What a client may send to create a key: everything but the digest, status and timestamps. */
const createSchema = z
  .object({
    key_id: z.string().optional(),
    tenant: z.string(),
    label: z.string().optional(),
    scope: z.enum(KEY_SCOPES).default('evaluate'),
    bound_agent_id: z.string().optional(),
    permitted_roles: z.array(z.string()).optional(),
    expires_at: z.string().optional(),
  })
  .strict();

/** Fields PATCH may change; identity, scope, digest and status (see revoke) are fixed. */
const PATCHABLE = ['label', 'bound_agent_id', 'permitted_roles', 'expires_at'];

export type PublicKey = Omit<ApiKey, 'digest'> & { readonly digest?: string };

export function publicKey(k: ApiKey, includeDigest = false): PublicKey {
  if (includeDigest) return k;
  const out: Record<string, unknown> = { ...k };
  delete out.digest;
  return out as PublicKey;
}

export class KeyService {
  constructor(private readonly ctx: ServiceContext) {}

  async list(filter: { tenant?: string | undefined } = {}): Promise<ApiKey[]> {
    const all = await reading(() => this.ctx.store.listKeys());
    return all
      .filter((k) => filter.tenant === undefined || k.tenant === filter.tenant)
      .sort((a, b) => a.key_id.localeCompare(b.key_id));
  }

  async get(keyId: string): Promise<ApiKey> {
    const k = await reading(() => this.ctx.store.getKey(keyId));
    if (k === undefined) throw notFound('key', keyId);
    return k;
  }

  /** Mints a key; `secret` must be shown to the caller once and never stored or logged. */
  create(body: unknown, actor: Actor): Promise<{ key: ApiKey; secret: string }> {
    const input = asObject(body);
    const id = typeof input.key_id === 'string' ? input.key_id : '';
    return audited(
      this.ctx,
      actor,
      'key.create',
      'key',
      id,
      async () => {
        const req = parseRecord(createSchema, input);
        if (req.key_id !== undefined && (await this.ctx.store.getKey(req.key_id)) !== undefined)
          throw new AdminError('already_exists', `key ${req.key_id} already exists`);
        const minted = mintApiKey(req.key_id);
        const now = nowIso(this.ctx);
        const key = parseRecord(keySchema, {
          ...req,
          key_id: minted.keyId,
          digest: minted.digest,
          status: 'active',
          created_at: now,
          updated_at: now,
        });
        await this.checkTenant(key.tenant);
        await this.ctx.store.putKey(key);
        return { key, secret: minted.secret };
      },
      (r) => `key_id=${r.key.key_id} scope=${r.key.scope}`,
    );
  }

  patch(keyId: string, body: unknown, actor: Actor): Promise<ApiKey> {
    const input = asObject(body);
    return audited(this.ctx, actor, 'key.patch', 'key', keyId, async () => {
      const fixed = Object.keys(input).filter((f) => !PATCHABLE.includes(f));
      refuseFields(input, fixed, `cannot be changed (patchable: ${PATCHABLE.join(', ')})`);
      const cur = await this.get(keyId);
      if (cur.status === 'revoked')
        throw new AdminError('invalid_transition', 'a revoked key cannot be changed');
      const next = parseRecord(keySchema, {
        ...mergePatch(cur, input),
        updated_at: nowIso(this.ctx),
      });
      await this.ctx.store.putKey(next);
      return next;
    });
  }

  /** Revocation is terminal and idempotent; the record stays so the audit trail can name it. */
  revoke(keyId: string, actor: Actor): Promise<ApiKey> {
    return audited(this.ctx, actor, 'key.revoke', 'key', keyId, async () => {
      const cur = await this.get(keyId);
      if (cur.status === 'revoked') return cur;
      const next: ApiKey = { ...cur, status: 'revoked', updated_at: nowIso(this.ctx) };
      await this.ctx.store.putKey(next);
      return next;
    });
  }

  delete(keyId: string, actor: Actor): Promise<void> {
    return audited(this.ctx, actor, 'key.delete', 'key', keyId, async () => {
      if (!(await this.ctx.store.deleteKey(keyId))) throw notFound('key', keyId);
    });
  }

  private async checkTenant(tenantId: string): Promise<void> {
    if ((await this.ctx.store.getTenant(tenantId)) === undefined)
      throw invalidRequest([`tenant: no tenant ${JSON.stringify(tenantId)}; create it first`]);
  }
}
