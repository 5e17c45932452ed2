// The Redis registry store (ioredis): single server, Sentinel or Cluster. The check path uses a
// connection with a short command timeout and no offline queue, so a Redis outage turns into a
// fast registry_unavailable instead of requests queueing past Envoy's deadline. A second
// connection subscribes to invalidations; losing it flushes the cache, and a polled version
// counter catches any message that was missed (or a Redis that came back with older data).
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import {
  agentSchema,
  keySchema,
  tenantSchema,
  type Agent,
  type ApiKey,
  type RegistryData,
  type Tenant,
} from './records.js';
import { crossCheck } from './registry-file.js';
import { LOOKUP_LUA, RedisKeys, WRITE_RECORD_LUA } from './redis-keys.js';
import {
  RegistryUnavailableError,
  RegistryWriteError,
  agentLookupKeys,
  agentLookups,
  concurrentChange,
  matchesExpected,
  type AgentLookup,
  type RegistryStore,
} from './registry.js';

export interface RedisStoreOptions {
  readonly url?: string | undefined;
  readonly sentinels?: readonly string[];
  readonly sentinelName?: string;
  readonly clusterNodes?: readonly string[];
  readonly password?: string | undefined;
  readonly tls?: boolean;
  readonly commandTimeoutMs: number;
  readonly prefix: string;
  readonly versionPollMs: number;
}

type Client = Redis | Cluster;

export class RedisStore implements RegistryStore {
  readonly kind = 'redis';
  readonly keys: RedisKeys;
  private readonly client: Client;
  private readonly admin: Client;
  private readonly sub: Client;
  private readonly listeners: ((keys: string[] | 'all') => void)[] = [];
  private lastVersion = -1;
  private subscribed = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private closed = false;
  // Set by a failed or timed-out read, cleared by the next answer: a paused or overloaded Redis
  // keeps its TCP connection "ready" while answering nothing, and readiness must say so.
  private failing = false;
  private readonly readDeadlineMs: number;

  constructor(
    opts: RedisStoreOptions,
    private readonly logger?: Logger,
    private readonly metrics?: Metrics,
  ) {
    this.keys = new RedisKeys(opts.prefix);
    this.readDeadlineMs = opts.commandTimeoutMs;
    // Check path: fail fast. Admin/import path: same timeout budget is too tight for bulk writes.
    this.client = connect(opts, {
      commandTimeout: opts.commandTimeoutMs,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
    });
    this.admin = connect(opts, {
      commandTimeout: 5000,
      enableOfflineQueue: true,
      maxRetriesPerRequest: 2,
    });
    this.sub = connect(opts, { enableOfflineQueue: true, maxRetriesPerRequest: null });
    for (const c of [this.client, this.admin]) {
      c.defineCommand('aaLookup', { numberOfKeys: 1, lua: LOOKUP_LUA });
      c.defineCommand('aaWrite', { lua: WRITE_RECORD_LUA });
    }
    this.client.on('ready', () => metrics?.redisUp.set(1));
    this.client.on('end', () => metrics?.redisUp.set(0));
    this.client.on('close', () => metrics?.redisUp.set(0));
    this.client.on('error', (err: Error) =>
      logger?.warn({ err: err.message }, 'redis connection error'),
    );
    this.admin.on('error', () => undefined);
    this.sub.on('error', () => undefined);
    this.setupSubscription();
    this.pollTimer = setInterval(() => void this.pollVersion(), opts.versionPollMs);
    this.pollTimer.unref();
  }

  /** Waits (bounded) for the check connection; start-up proceeds either way. */
  async waitReady(timeoutMs: number): Promise<boolean> {
    if (this.ready()) return true;
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(this.ready()), timeoutMs);
      this.client.once('ready', () => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  ready(): boolean {
    return this.client.status === 'ready' && !this.failing;
  }

  onInvalidate(listener: (keys: string[] | 'all') => void): void {
    this.listeners.push(listener);
  }

  async findAgent(lookup: AgentLookup): Promise<Agent | undefined> {
    const json =
      lookup.by === 'id'
        ? await this.read(() => this.client.get(this.keys.agent(lookup.value)))
        : await this.read(() =>
            (this.client as unknown as LuaCommands).aaLookup(
              this.keys.index(lookup),
              `${this.keys.tag}:agent:`,
            ),
          );
    return json == null ? undefined : agentSchema.parse(JSON.parse(json));
  }

  async getKey(keyId: string): Promise<ApiKey | undefined> {
    const json = await this.read(() => this.client.get(this.keys.key(keyId)));
    return json == null ? undefined : keySchema.parse(JSON.parse(json));
  }

  async getTenant(tenantId: string): Promise<Tenant | undefined> {
    const json = await this.read(() => this.client.get(this.keys.tenant(tenantId)));
    return json == null ? undefined : tenantSchema.parse(JSON.parse(json));
  }

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

  async listAgents(): Promise<Agent[]> {
    return this.listJson(
      this.keys.agents,
      (id) => this.keys.agent(id),
      (j) => agentSchema.parse(j),
    );
  }
  async listKeys(): Promise<ApiKey[]> {
    return this.listJson(
      this.keys.keys,
      (id) => this.keys.key(id),
      (j) => keySchema.parse(j),
    );
  }
  async listTenants(): Promise<Tenant[]> {
    return this.listJson(
      this.keys.tenants,
      (id) => this.keys.tenant(id),
      (j) => tenantSchema.parse(j),
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
          tenants: await this.listTenants(),
          agents: await this.listAgents(),
          keys: await this.listKeys(),
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
      for (const a of await this.listAgents())
        if (!data.agents.some((x) => x.agent_id === a.agent_id)) await this.deleteAgent(a.agent_id);
      for (const k of await this.listKeys())
        if (!data.keys.some((x) => x.key_id === k.key_id)) await this.deleteKey(k.key_id);
      for (const t of await this.listTenants())
        if (!data.tenants.some((x) => x.tenant_id === t.tenant_id))
          await this.deleteTenant(t.tenant_id);
    }
    for (const t of data.tenants) await this.putTenant(t);
    for (const k of data.keys) await this.putKey(k);
    for (const a of data.agents) await this.putAgent(a);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    // quit() waits for a reply that never comes while Redis is down: only ask a live connection.
    const bounded = (c: Client) =>
      c.status === 'ready'
        ? Promise.race([c.quit(), new Promise((r) => setTimeout(r, 500))])
        : Promise.resolve();
    await Promise.allSettled([bounded(this.client), bounded(this.admin), bounded(this.sub)]);
    for (const c of [this.client, this.admin, this.sub]) c.disconnect();
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
        const v = await (this.admin as unknown as LuaCommands).aaWrite(
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
        this.emit([...new Set(cacheKeys)]);
        return true;
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
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
        const v = await (this.admin as unknown as LuaCommands).aaWrite(
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
        void v;
        this.emit([cacheKey]);
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

  private async listJson<T>(
    set: string,
    keyOf: (id: string) => string,
    parse: (j: unknown) => T,
  ): Promise<T[]> {
    const ids = (await this.admin.smembers(set)).sort();
    const out: T[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const values = await this.admin.mget(...chunk.map(keyOf));
      for (const v of values) if (v != null) out.push(parse(JSON.parse(v)));
    }
    return out;
  }

  // The command timeout bounds one command on one connection; the deadline here also bounds
  // what ioredis may do around it (Cluster redirections and CLUSTERDOWN retries).
  private async read<T>(fn: () => Promise<T>, operation = 'lookup'): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error('registry read deadline exceeded')),
          this.readDeadlineMs,
        );
      });
      const value = await Promise.race([fn(), deadline]);
      this.failing = false;
      return value;
    } catch (err) {
      this.failing = true;
      this.metrics?.redisErrors.inc({ operation });
      throw new RegistryUnavailableError(err instanceof Error ? err.message : String(err));
    } finally {
      clearTimeout(timer);
    }
  }

  private setupSubscription(): void {
    this.sub.on('ready', () => {
      void (async () => {
        try {
          await this.sub.subscribe(this.keys.channel);
          // Messages sent while we were not subscribed are lost: start from an empty cache.
          if (this.subscribed || this.lastVersion >= 0) {
            this.metrics?.invalidations.inc({ kind: 'reconnect' });
            this.emit('all');
          }
          this.subscribed = true;
          this.metrics?.invalidationChannelUp.set(1);
        } catch (err) {
          this.logger?.warn({ err: String(err) }, 'invalidation subscribe failed');
        }
      })();
    });
    const down = () => {
      if (this.subscribed) this.metrics?.invalidationChannelUp.set(0);
      this.subscribed = false;
    };
    this.sub.on('close', down);
    this.sub.on('end', down);
    this.sub.on('message', (_channel: string, message: string) => {
      try {
        const m = JSON.parse(message) as { v: number; keys: string[] | 'all' };
        // Redis publishes in version order on one connection: a jump means a lost message, and
        // a later message must not hide it.
        if (this.lastVersion >= 0 && m.v > this.lastVersion + 1) {
          this.metrics?.invalidations.inc({ kind: 'version_gap' });
          this.emit('all');
        }
        this.noteVersion(m.v);
        this.metrics?.invalidations.inc({ kind: m.keys === 'all' ? 'flush' : 'keys' });
        this.emit(m.keys);
      } catch {
        this.emit('all');
      }
    });
  }

  private noteVersion(v: number): void {
    if (Number.isFinite(v) && v > this.lastVersion) this.lastVersion = v;
  }

  // A version ahead of every message seen means a message was lost (pub/sub is at-most-once).
  // Re-check once after a short pause so a message still in flight is not mistaken for a loss.
  private async pollVersion(): Promise<void> {
    if (this.closed) return;
    try {
      const v = Number(
        (await this.read(() => this.client.get(this.keys.version), 'version')) ?? '0',
      );
      if (this.lastVersion < 0) {
        this.lastVersion = v;
        return;
      }
      if (v < this.lastVersion) {
        // The counter went backwards: Redis restarted without its data, was flushed, or failed
        // over to a replica that had not seen the latest writes. Nothing cached can be trusted.
        this.lastVersion = v;
        this.metrics?.invalidations.inc({ kind: 'version_gap' });
        this.emit('all');
        return;
      }
      if (v === this.lastVersion) return;
      await new Promise((r) => setTimeout(r, 100));
      if (v > this.lastVersion) {
        this.lastVersion = v;
        this.metrics?.invalidations.inc({ kind: 'version_gap' });
        this.emit('all');
      }
    } catch {
      // counted by read(); the next poll tries again
    }
  }

  private emit(keys: string[] | 'all'): void {
    for (const l of this.listeners) l(keys);
  }
}

interface LuaCommands {
  aaLookup(indexKey: string, recordPrefix: string): Promise<string | null>;
  aaWrite(numKeys: number, ...args: string[]): Promise<number>;
}

// Reconnect quickly at first, then every 2 s at most; jitter keeps replicas from reconnecting in step.
function reconnectDelay(times: number): number {
  return Math.min(50 * 2 ** Math.min(times, 6), 2000) + Math.floor(Math.random() * 50);
}

function connect(o: RedisStoreOptions, extra: ConnectionOptions): Client {
  // RESP2 everywhere: ioredis 6 defaults to RESP3, which the subscriber does not need and
  // which changes reply shapes; one protocol keeps the three connections alike.
  const node: RedisOptions = {
    protocol: 2,
    connectTimeout: 2000,
    ...(o.password !== undefined ? { password: o.password } : {}),
    ...(o.tls ? { tls: {} } : {}),
    ...(extra.commandTimeout !== undefined ? { commandTimeout: extra.commandTimeout } : {}),
    maxRetriesPerRequest: extra.maxRetriesPerRequest,
  };
  if (o.clusterNodes !== undefined && o.clusterNodes.length > 0) {
    // On a Cluster the offline queue is a Cluster option (node connections always queue while
    // they connect; the command timeout still bounds that), and node connections do not
    // reconnect on their own: the Cluster refreshes its slot map and reconnects instead.
    return new Cluster(o.clusterNodes.map(hostPort), {
      redisOptions: node,
      enableOfflineQueue: extra.enableOfflineQueue,
      clusterRetryStrategy: reconnectDelay,
      slotsRefreshTimeout: 1000,
      ...(extra.maxRetriesPerRequest === 0
        ? {
            maxRedirections: 2,
            retryDelayOnClusterDown: 0,
            retryDelayOnTryAgain: 0,
            retryDelayOnFailover: 0,
          }
        : {}),
    });
  }
  const single: RedisOptions = {
    ...node,
    enableOfflineQueue: extra.enableOfflineQueue,
    retryStrategy: reconnectDelay,
  };
  if (o.sentinels !== undefined && o.sentinels.length > 0) {
    return new Redis({
      ...single,
      sentinels: o.sentinels.map(hostPort),
      name: o.sentinelName ?? 'mymaster',
      sentinelRetryStrategy: reconnectDelay,
    });
  }
  return new Redis(o.url ?? 'redis://127.0.0.1:6379', single);
}

interface ConnectionOptions {
  readonly commandTimeout?: number;
  readonly enableOfflineQueue: boolean;
  readonly maxRetriesPerRequest: number | null;
}

function hostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  return i === -1 ? { host: s, port: 6379 } : { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
}
