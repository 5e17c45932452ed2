// Registry writes on the admin connection. Each record is written with its indexes, the version
// counter and the invalidation message by one Lua script that first checks the record is still
// what was read (compare-and-set), so a stale edit can never undo a concurrent revocation.
import type { Metrics } from '../observability/metrics.js';
import { agentSchema, type Agent, type ApiKey, type RegistryData, type Tenant } from './records.js';
import { crossCheck } from './registry-file.js';
import { lua, type Client } from './redis-connection.js';
import type { RedisKeys } from './redis-keys.js';
import {
  RegistryUnavailableError,
  RegistryWriteError,
  agentLookupKeys,
  agentLookups,
  concurrentChange,
  matchesExpected,
  type RegistryStore,
} from './registry.js';

/** What the import needs to read: the current contents of the store. */
export type RegistryLister = Pick<RegistryStore, 'listAgents' | 'listKeys' | 'listTenants'>;

export class RedisWrites {
  constructor(
    private readonly admin: Client,
    private readonly keys: RedisKeys,
    private readonly lists: RegistryLister,
    private readonly invalidate: (cacheKeys: string[]) => void,
    private readonly metrics?: Metrics,
  ) {}

  async putAgent(agent: Agent, expected?: Agent | null): Promise<void> {
    await this.writeAgent(agent.agent_id, agent, expected);
  }
  async deleteAgent(agentId: string): Promise<boolean> {
    return this.writeAgent(agentId, undefined);
  }
  async putKey(key: ApiKey): Promise<void> {
    await this.writeSimple(
      this.keys.key(key.key_id),
      this.keys.keys,
      key.key_id,
      JSON.stringify(key),
      `key:${key.key_id}`,
    );
  }
  async deleteKey(keyId: string): Promise<boolean> {
    return this.writeSimple(this.keys.key(keyId), this.keys.keys, keyId, '', `key:${keyId}`);
  }
  async putTenant(t: Tenant): Promise<void> {
    await this.writeSimple(
      this.keys.tenant(t.tenant_id),
      this.keys.tenants,
      t.tenant_id,
      JSON.stringify(t),
      `tenant:${t.tenant_id}`,
    );
  }
  async deleteTenant(tenantId: string): Promise<boolean> {
    return this.writeSimple(
      this.keys.tenant(tenantId),
      this.keys.tenants,
      tenantId,
      '',
      `tenant:${tenantId}`,
    );
  }

  /**
   * The whole file is validated (schema and cross-record uniqueness, including against what is
   * already stored) before the first write; each record is then written with its indexes atomically.
   */
  async importData(data: RegistryData, opts: { replace: boolean }): Promise<void> {
    const current: RegistryData = opts.replace
      ? { tenants: [], agents: [], keys: [] }
      : {
          tenants: await this.lists.listTenants(),
          agents: await this.lists.listAgents(),
          keys: await this.lists.listKeys(),
        };
    const byId = <T>(base: T[], add: T[], id: (t: T) => string) => {
      const m = new Map(base.map((t) => [id(t), t]));
      for (const t of add) m.set(id(t), t);
      return [...m.values()];
    };
    const merged: RegistryData = {
      tenants: byId(current.tenants, data.tenants, (t) => t.tenant_id),
      agents: byId(current.agents, data.agents, (a) => a.agent_id),
      keys: byId(current.keys, data.keys, (k) => k.key_id),
    };
    const problems = crossCheck(merged);
    if (problems.length > 0) throw new RegistryWriteError('conflict', problems.join('; '));
    if (opts.replace) {
      for (const a of await this.lists.listAgents())
        if (!data.agents.some((x) => x.agent_id === a.agent_id)) await this.deleteAgent(a.agent_id);
      for (const k of await this.lists.listKeys())
        if (!data.keys.some((x) => x.key_id === k.key_id)) await this.deleteKey(k.key_id);
      for (const t of await this.lists.listTenants())
        if (!data.tenants.some((x) => x.tenant_id === t.tenant_id))
          await this.deleteTenant(t.tenant_id);
    }
    for (const t of data.tenants) await this.putTenant(t);
    for (const k of data.keys) await this.putKey(k);
    for (const a of data.agents) await this.putAgent(a);
  }

  private async writeAgent(
    agentId: string,
    next: Agent | undefined,
    expected?: Agent | null,
  ): Promise<boolean> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const curJson = (await this.admin.get(this.keys.agent(agentId))) ?? '';
      if (next === undefined && curJson === '') return false;
      const cur = curJson === '' ? undefined : agentSchema.parse(JSON.parse(curJson));
      // The Lua script then checks that the record is still `curJson` when it writes.
      if (!matchesExpected(cur, expected)) throw concurrentChange(agentId);
      const newIdx =
        next === undefined
          ? []
          : agentLookups(next)
              .slice(1)
              .map((l) => this.keys.index(l));
      const oldIdx =
        cur === undefined
          ? []
          : agentLookups(cur)
              .slice(1)
              .map((l) => this.keys.index(l))
              .filter((k) => !newIdx.includes(k));
      const cacheKeys = [
        ...(cur ? agentLookupKeys(cur) : []),
        ...(next ? agentLookupKeys(next) : []),
      ];
      try {
        const v = await lua(this.admin).aaWrite(
          3 + newIdx.length + oldIdx.length,
          this.keys.agent(agentId),
          this.keys.agents,
          this.keys.version,
          ...newIdx,
          ...oldIdx,
          next === undefined ? '' : JSON.stringify(next),
          agentId,
          curJson,
          String(newIdx.length),
          String(oldIdx.length),
          this.keys.channel,
          JSON.stringify([...new Set(cacheKeys)]),
        );
        // Drop our own cache entries now rather than trusting our message to come back; the
        // version is left to the subscription so that a lost message still shows up as a gap.
        void v;
        this.invalidate([...new Set(cacheKeys)]);
        return true;
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        // STALE: the record changed after we read it; read again rather than overwrite it.
        if (msg.includes('STALE')) continue;
        if (msg.includes('CONFLICT'))
          throw new RegistryWriteError(
            'conflict',
            msg.replace(/^.*CONFLICT /, '').replace(this.keys.tag + ':idx:', ''),
          );
        this.metrics?.redisErrors.inc({ operation: 'write' });
        throw new RegistryUnavailableError(msg);
      }
    }
    throw new RegistryWriteError(
      'conflict',
      `agent ${agentId} is being changed concurrently; retry`,
    );
  }

  private async writeSimple(
    key: string,
    set: string,
    id: string,
    json: string,
    cacheKey: string,
  ): Promise<boolean> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const cur = (await this.admin.get(key)) ?? '';
      if (json === '' && cur === '') return false;
      try {
        const v = await lua(this.admin).aaWrite(
          3,
          key,
          set,
          this.keys.version,
          json,
          id,
          cur,
          '0',
          '0',
          this.keys.channel,
          JSON.stringify([cacheKey]),
        );
        // As for agents: invalidate locally now, leave the version to the subscription.
        void v;
        this.invalidate([cacheKey]);
        return true;
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        if (msg.includes('STALE')) continue;
        this.metrics?.redisErrors.inc({ operation: 'write' });
        throw new RegistryUnavailableError(msg);
      }
    }
    throw new RegistryWriteError('conflict', `${id} is being changed concurrently; retry`);
  }
}
