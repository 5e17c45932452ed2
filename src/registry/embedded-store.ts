// The embedded registry: a YAML file loaded into memory, so a fresh clone runs without Redis.
// The file is reloaded when it changes, atomically: a bad file is refused with one error line listing
// every problem and the previous registry stays in force. Admin writes are persisted back to the file
// (write to a temporary file, then rename) so the file stays the single source of truth.
import { renameSync, unwatchFile, watchFile, writeFileSync } from 'node:fs';
import type { Logger } from '../observability/logger.js';
import type { Agent, ApiKey, RegistryData, Tenant } from './records.js';
import {
  crossCheck,
  formatRegistry,
  readRegistryFile,
  RegistryFileError,
} from './registry-file.js';
import {
  RegistryWriteError,
  agentLookupKeys,
  concurrentChange,
  lookupKey,
  matchesExpected,
  type AgentLookup,
  type RegistryStore,
  type Invalidation,
} from './registry.js';

interface Snapshot {
  readonly data: RegistryData;
  readonly agentIndex: ReadonlyMap<string, Agent>;
  readonly keys: ReadonlyMap<string, ApiKey>;
  readonly tenants: ReadonlyMap<string, Tenant>;
}

export class EmbeddedStore implements RegistryStore {
  readonly kind = 'embedded';
  private snap: Snapshot;
  private readonly listeners: ((keys: Invalidation) => void)[] = [];
  private watcher: (() => void) | undefined;
  // The registry text now in force (as formatted): a change event whose file says the same, such
  // as our own persisted admin write, is not a reload.
  private inForce = '';

  constructor(
    private readonly path: string | undefined,
    private readonly logger?: Logger,
    initial?: RegistryData,
  ) {
    const data = initial ?? (path === undefined ? empty() : readRegistryFile(path));
    this.snap = snapshot(data);
    this.inForce = formatRegistry(data);
  }

  /**
   * Reload on change. Polling the file's stat (default every 1 s) works on every filesystem,
   * including Kubernetes ConfigMap mounts, where the file is replaced through a symlink swap.
   */
  watch(intervalMs = 1000): void {
    if (this.path === undefined || this.watcher !== undefined) return;
    const listener = () => void this.reload();
    this.watcher = listener;
    watchFile(this.path, { interval: intervalMs, persistent: false }, listener);
  }

  reload(): boolean {
    if (this.path === undefined) return false;
    try {
      const data = readRegistryFile(this.path);
      const text = formatRegistry(data);
      if (text === this.inForce) return true;
      this.snap = snapshot(data);
      this.inForce = text;
      this.logger?.info(
        { agents: data.agents.length, keys: data.keys.length },
        'registry file reloaded',
      );
      this.emit('all');
      return true;
    } catch (err) {
      const problems = err instanceof RegistryFileError ? err.problems : [String(err)];
      this.logger?.error(
        { problems },
        'registry file refused; the previous registry stays in force',
      );
      return false;
    }
  }

  async findAgent(lookup: AgentLookup): Promise<Agent | undefined> {
    return this.snap.agentIndex.get(lookupKey(lookup));
  }
  async getKey(keyId: string): Promise<ApiKey | undefined> {
    return this.snap.keys.get(keyId);
  }
  async getTenant(tenantId: string): Promise<Tenant | undefined> {
    return this.snap.tenants.get(tenantId);
  }
  async listAgents(): Promise<Agent[]> {
    return [...this.snap.data.agents];
  }
  async listKeys(): Promise<ApiKey[]> {
    return [...this.snap.data.keys];
  }
  async listTenants(): Promise<Tenant[]> {
    return [...this.snap.data.tenants];
  }

  async putAgent(agent: Agent, expected?: Agent | null): Promise<void> {
    const old = this.snap.agentIndex.get(lookupKey({ by: 'id', value: agent.agent_id }));
    if (!matchesExpected(old, expected)) throw concurrentChange(agent.agent_id);
    const agents = this.snap.data.agents.filter((a) => a.agent_id !== agent.agent_id);
    agents.push(agent);
    this.commit({ ...this.snap.data, agents }, [
      ...(old ? agentLookupKeys(old) : []),
      ...agentLookupKeys(agent),
    ]);
  }
  async deleteAgent(agentId: string): Promise<boolean> {
    const old = this.snap.agentIndex.get(lookupKey({ by: 'id', value: agentId }));
    if (old === undefined) return false;
    this.commit(
      { ...this.snap.data, agents: this.snap.data.agents.filter((a) => a !== old) },
      agentLookupKeys(old),
    );
    return true;
  }
  async putKey(key: ApiKey): Promise<void> {
    const keys = this.snap.data.keys.filter((k) => k.key_id !== key.key_id);
    keys.push(key);
    this.commit({ ...this.snap.data, keys }, [`key:${key.key_id}`]);
  }
  async deleteKey(keyId: string): Promise<boolean> {
    if (!this.snap.keys.has(keyId)) return false;
    this.commit(
      { ...this.snap.data, keys: this.snap.data.keys.filter((k) => k.key_id !== keyId) },
      [`key:${keyId}`],
    );
    return true;
  }
  async putTenant(tenant: Tenant): Promise<void> {
    const tenants = this.snap.data.tenants.filter((t) => t.tenant_id !== tenant.tenant_id);
    tenants.push(tenant);
    this.commit({ ...this.snap.data, tenants }, [`tenant:${tenant.tenant_id}`]);
  }
  async deleteTenant(tenantId: string): Promise<boolean> {
    if (!this.snap.tenants.has(tenantId)) return false;
    this.commit(
      {
        ...this.snap.data,
        tenants: this.snap.data.tenants.filter((t) => t.tenant_id !== tenantId),
      },
      [`tenant:${tenantId}`],
    );
    return true;
  }
  async importData(data: RegistryData, opts: { replace: boolean }): Promise<void> {
    const merged: RegistryData = opts.replace
      ? data
      : {
          tenants: mergeBy(this.snap.data.tenants, data.tenants, (t) => t.tenant_id),
          agents: mergeBy(this.snap.data.agents, data.agents, (a) => a.agent_id),
          keys: mergeBy(this.snap.data.keys, data.keys, (k) => k.key_id),
        };
    this.commit(merged, 'all');
  }

  ready(): boolean {
    return true;
  }
  onInvalidate(listener: (keys: Invalidation) => void): void {
    this.listeners.push(listener);
  }
  async close(): Promise<void> {
    // Only our own listener: another store watching the same file keeps its watch.
    if (this.path !== undefined && this.watcher !== undefined) unwatchFile(this.path, this.watcher);
    this.watcher = undefined;
  }

  // Validate the whole next state first; only then swap it in and persist it.
  private commit(next: RegistryData, changed: string[] | 'all'): void {
    const problems = crossCheck(next);
    if (problems.length > 0) throw new RegistryWriteError('conflict', problems.join('; '));
    const text = formatRegistry(next);
    if (this.path !== undefined) {
      const tmp = `${this.path}.tmp-${process.pid}`;
      writeFileSync(tmp, text, { mode: 0o600 });
      renameSync(tmp, this.path);
    }
    this.snap = snapshot(next);
    this.inForce = text;
    this.emit(changed);
  }

  private emit(keys: string[] | 'all'): void {
    for (const l of this.listeners) l(keys);
  }
}

function snapshot(data: RegistryData): Snapshot {
  const agentIndex = new Map<string, Agent>();
  for (const a of data.agents) for (const k of agentLookupKeys(a)) agentIndex.set(k, a);
  return {
    data,
    agentIndex,
    keys: new Map(data.keys.map((k) => [k.key_id, k])),
    tenants: new Map(data.tenants.map((t) => [t.tenant_id, t])),
  };
}

function empty(): RegistryData {
  return { tenants: [], agents: [], keys: [] };
}

function mergeBy<T>(base: readonly T[], incoming: readonly T[], id: (t: T) => string): T[] {
  const m = new Map(base.map((t) => [id(t), t]));
  for (const t of incoming) m.set(id(t), t);
  return [...m.values()];
}
