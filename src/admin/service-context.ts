// What every admin service needs: the store it writes through, the auditor every change is
// reported to, and a clock. `audited` wraps one change so that it is audited exactly once,
// whether it succeeds or fails, and so store errors come out as stable admin error codes.
import { randomUUID } from 'node:crypto';
import type { AdminAuditInput, Auditor } from '../audit/types.js';
import type { RegistryStore } from '../registry/registry.js';
import { AdminError, toAdminError } from './admin-error.js';

export interface ServiceContext {
  readonly store: RegistryStore;
  readonly auditor?: Auditor | undefined;
  readonly now?: (() => Date) | undefined;
}

/** Who made the change: `key:<key_id>`, `bootstrap:<id>` or `cli:<user>`; never a secret. */
export type Actor = string;

export function nowIso(ctx: ServiceContext): string {
  return (ctx.now?.() ?? new Date()).toISOString();
}

export async function audited<T>(
  ctx: ServiceContext,
  actor: Actor,
  action: string,
  kind: AdminAuditInput['object_kind'],
  objectId: string,
  change: () => Promise<T>,
  detail?: (result: T) => string | undefined,
): Promise<T> {
  const base = {
    type: 'admin',
    decision_id: randomUUID(),
    actor,
    action,
    object_kind: kind,
    object_id: objectId,
  } as const;
  try {
    const result = await change();
    ctx.auditor?.record({ ...base, time: nowIso(ctx), result: 'ok', detail: detail?.(result) });
    return result;
  } catch (err) {
    const e = toAdminError(err);
    // Only the code: messages may quote request input, and the audit trail must stay clean.
    ctx.auditor?.record({ ...base, time: nowIso(ctx), result: 'error', detail: e.code });
    throw e;
  }
}

export function notFound(kind: string, id: string): AdminError {
  return new AdminError('not_found', `no ${kind} ${JSON.stringify(id)}`);
}

/** Read path: store errors become registry_unavailable rather than escaping as bugs. */
export async function reading<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    throw toAdminError(err);
  }
}
