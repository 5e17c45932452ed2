// Tenant operations shared by the admin HTTP API and the CLI. A tenant that agents or keys still
// name cannot be deleted: the check path would silently lose the tenant's require_agent_id rule.
import { tenantSchema, type Tenant } from '../registry/records.js';
import { AdminError, invalidRequest } from './admin-error.js';
import { asObject, parseRecord, refuseFields } from './record-input.js';
import {
  audited,
  notFound,
  nowIso,
  reading,
  type Actor,
  type ServiceContext,
} from './service-context.js';

const SERVER_OWNED = ['created_at', 'updated_at'];

export class TenantService {
  constructor(private readonly ctx: ServiceContext) {}

  async list(): Promise<Tenant[]> {
    const all = await reading(() => this.ctx.store.listTenants());
    return all.sort((a, b) => a.tenant_id.localeCompare(b.tenant_id));
  }

  async get(tenantId: string): Promise<Tenant> {
    const t = await reading(() => this.ctx.store.getTenant(tenantId));
    if (t === undefined) throw notFound('tenant', tenantId);
    return t;
  }

  create(body: unknown, actor: Actor): Promise<Tenant> {
    const input = asObject(body);
    const id = typeof input.tenant_id === 'string' ? input.tenant_id : '';
    return audited(this.ctx, actor, 'tenant.create', 'tenant', id, async () => {
      refuseFields(input, SERVER_OWNED, 'set by the server');
      const now = nowIso(this.ctx);
      const tenant = parseRecord(tenantSchema, { ...input, created_at: now, updated_at: now });
      if ((await this.ctx.store.getTenant(tenant.tenant_id)) !== undefined)
        throw new AdminError('already_exists', `tenant ${tenant.tenant_id} already exists`);
      await this.ctx.store.putTenant(tenant);
      return tenant;
    });
  }

  replace(tenantId: string, body: unknown, actor: Actor): Promise<Tenant> {
    const input = asObject(body);
    return audited(this.ctx, actor, 'tenant.replace', 'tenant', tenantId, async () => {
      refuseFields(input, SERVER_OWNED, 'set by the server');
      if ('tenant_id' in input && input.tenant_id !== tenantId)
        throw invalidRequest(['tenant_id: must match the tenant in the path']);
      const cur = await this.get(tenantId);
      const next = parseRecord(tenantSchema, {
        ...input,
        tenant_id: tenantId,
        created_at: cur.created_at,
        updated_at: nowIso(this.ctx),
      });
      await this.ctx.store.putTenant(next);
      return next;
    });
  }

  delete(tenantId: string, actor: Actor): Promise<void> {
    return audited(this.ctx, actor, 'tenant.delete', 'tenant', tenantId, async () => {
      await this.get(tenantId);
      const agents = (await this.ctx.store.listAgents()).filter(
        (a) => a.tenant === tenantId,
      ).length;
      const keys = (await this.ctx.store.listKeys()).filter((k) => k.tenant === tenantId).length;
      if (agents + keys > 0)
        throw new AdminError(
          'tenant_in_use',
          `tenant ${tenantId} still has ${agents} agent(s) and ${keys} key(s); delete or move them first`,
        );
      await this.ctx.store.deleteTenant(tenantId);
    });
  }
}
