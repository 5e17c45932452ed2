// Agent operations shared by the admin HTTP API and the CLI: create, replace, patch, delete,
// status actions and certificate rotation. Every write goes through RegistryStore (which writes
// record and indexes atomically and invalidates every replica's cache) and is audited.
import { z } from 'zod';
import { agentSchema, type Agent } from '../registry/records.js';
import { AdminError, invalidRequest } from './admin-error.js';
import { asObject, compact, mergePatch, parseRecord, refuseFields } from './record-input.js';
import {
  audited,
  notFound,
  nowIso,
  reading,
  type Actor,
  type ServiceContext,
} from './service-context.js';
import { nextStatus, type StatusAction } from './status-transitions.js';

const SERVER_OWNED = ['created_at', 'updated_at'];
const STATUS_HINT = 'change it with POST /v1/agents/{id}/approve|suspend|revoke|reinstate';
/** Longest grace for a previous certificate: long enough for any rollout, short enough to end. */
export const MAX_GRACE_SECONDS = 30 * 24 * 3600;

const rotationSchema = z
  .object({
    cert_fingerprint: z.string(),
    grace_seconds: z.number().int().min(0).max(MAX_GRACE_SECONDS),
  })
  .strict();

export interface AgentFilter {
  readonly tenant?: string | undefined;
  readonly status?: string | undefined;
}

export class AgentService {
  constructor(private readonly ctx: ServiceContext) {}

  async list(filter: AgentFilter = {}): Promise<Agent[]> {
    const all = await reading(() => this.ctx.store.listAgents());
    return all
      .filter((a) => filter.tenant === undefined || a.tenant === filter.tenant)
      .filter((a) => filter.status === undefined || a.status === filter.status)
      .sort((a, b) => a.agent_id.localeCompare(b.agent_id));
  }

  async get(agentId: string): Promise<Agent> {
    const a = await reading(() => this.ctx.store.findAgent({ by: 'id', value: agentId }));
    if (a === undefined) throw notFound('agent', agentId);
    return a;
  }

  /** New agents start `pending` unless the body says otherwise. */
  create(body: unknown, actor: Actor): Promise<Agent> {
    const input = asObject(body);
    const id = typeof input.agent_id === 'string' ? input.agent_id : '';
    return audited(this.ctx, actor, 'agent.create', 'agent', id, async () => {
      refuseFields(input, SERVER_OWNED, 'set by the server');
      const now = nowIso(this.ctx);
      const agent = parseRecord(agentSchema, {
        status: 'pending',
        ...input,
        created_at: now,
        updated_at: now,
      });
      await this.checkTenant(agent.tenant);
      if ((await this.find(agent.agent_id)) !== undefined)
        throw new AdminError('already_exists', `agent ${agent.agent_id} already exists`);
      await this.ctx.store.putAgent(agent, null);
      return agent;
    });
  }

  /** Full replacement; status and created_at are kept (status has its own actions). */
  replace(agentId: string, body: unknown, actor: Actor): Promise<Agent> {
    const input = asObject(body);
    return audited(this.ctx, actor, 'agent.replace', 'agent', agentId, async () => {
      refuseFields(input, SERVER_OWNED, 'set by the server');
      const cur = await this.get(agentId);
      this.checkIdentity(input, cur);
      const next = parseRecord(agentSchema, {
        ...input,
        agent_id: agentId,
        status: cur.status,
        created_at: cur.created_at,
        updated_at: nowIso(this.ctx),
      });
      await this.checkTenant(next.tenant);
      await this.ctx.store.putAgent(compact(next), cur);
      return next;
    });
  }

  /** RFC 7396 merge patch: null removes an optional field. */
  patch(agentId: string, body: unknown, actor: Actor): Promise<Agent> {
    const input = asObject(body);
    return audited(this.ctx, actor, 'agent.patch', 'agent', agentId, async () => {
      refuseFields(input, SERVER_OWNED, 'set by the server');
      const cur = await this.get(agentId);
      this.checkIdentity(input, cur);
      const merged = mergePatch(cur, input);
      const next = parseRecord(agentSchema, { ...merged, updated_at: nowIso(this.ctx) });
      if (next.tenant !== cur.tenant) await this.checkTenant(next.tenant);
      await this.ctx.store.putAgent(next, cur);
      return next;
    });
  }

  delete(agentId: string, actor: Actor): Promise<void> {
    return audited(this.ctx, actor, 'agent.delete', 'agent', agentId, async () => {
      if (!(await this.ctx.store.deleteAgent(agentId))) throw notFound('agent', agentId);
    });
  }

  transition(agentId: string, action: StatusAction, actor: Actor): Promise<Agent> {
    return audited(
      this.ctx,
      actor,
      `agent.${action}`,
      'agent',
      agentId,
      async () => {
        const cur = await this.get(agentId);
        const status = nextStatus(cur.status, action);
        if (status === undefined) return cur;
        const next: Agent = { ...cur, status, updated_at: nowIso(this.ctx) };
        await this.ctx.store.putAgent(next, cur);
        return next;
      },
      (a) => `status=${a.status}`,
    );
  }

  /**
   * The current fingerprint becomes the previous one, accepted until now + grace, so agents can
   * roll their certificates without a window where neither certificate works. A grace of 0 drops
   * the old certificate at once (rotation after a key compromise).
   */
  rotateCertificate(agentId: string, body: unknown, actor: Actor): Promise<Agent> {
    return audited(this.ctx, actor, 'agent.rotate_certificate', 'agent', agentId, async () => {
      const input = parseRecord(rotationSchema, body);
      const cur = await this.get(agentId);
      if (cur.status === 'revoked')
        throw new AdminError('invalid_transition', 'a revoked agent cannot rotate certificates');
      const now = this.ctx.now?.() ?? new Date();
      const candidate = {
        ...cur,
        cert_fingerprint: input.cert_fingerprint,
        cert_fingerprint_prev: undefined as string | undefined,
        cert_fingerprint_prev_expires_at: undefined as string | undefined,
        updated_at: now.toISOString(),
      };
      if (cur.cert_fingerprint !== undefined && input.grace_seconds > 0) {
        candidate.cert_fingerprint_prev = cur.cert_fingerprint;
        candidate.cert_fingerprint_prev_expires_at = new Date(
          now.getTime() + input.grace_seconds * 1000,
        ).toISOString();
      }
      const next = parseRecord(agentSchema, compact(candidate));
      if (next.cert_fingerprint === cur.cert_fingerprint)
        throw invalidRequest(['cert_fingerprint: is already the current fingerprint']);
      await this.ctx.store.putAgent(next, cur);
      return next;
    });
  }

  private async find(agentId: string): Promise<Agent | undefined> {
    return this.ctx.store.findAgent({ by: 'id', value: agentId });
  }

  // The path names the agent and the status has its own actions: a body may repeat them, not change them.
  private checkIdentity(input: Record<string, unknown>, cur: Agent): void {
    const problems: string[] = [];
    if ('agent_id' in input && input.agent_id !== cur.agent_id)
      problems.push('agent_id: must match the agent in the path');
    if ('status' in input && input.status !== cur.status) problems.push(`status: ${STATUS_HINT}`);
    if (problems.length > 0) throw invalidRequest(problems);
  }

  private async checkTenant(tenantId: string): Promise<void> {
    if ((await this.ctx.store.getTenant(tenantId)) === undefined)
      throw invalidRequest([`tenant: no tenant ${JSON.stringify(tenantId)}; create it first`]);
  }
}
