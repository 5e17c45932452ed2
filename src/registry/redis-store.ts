// The Redis registry store (ioredis): single server, Sentinel or Cluster. The check path uses a
// connection with a short command timeout and no offline queue, so a Redis outage turns into a
// fast registry_unavailable instead of requests queueing past Envoy's deadline. A second
// connection subscribes to invalidations; losing it flushes the cache, and a polled version
// counter catches any message that was missed (or a Redis that came back with older data).
// This file owns reads and readiness; connections, invalidations and writes have their own files.
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
import {
  closeClients,
  connect,
  defineLuaCommands,
  lua,
  type Client,
  type RedisConnectionOptions,
} from './redis-connection.js';
import { RedisInvalidations } from './redis-invalidations.js';
import { RedisKeys } from './redis-keys.js';
import { RedisWrites } from './redis-writes.js';
import {
  RegistryUnavailableError,
  type AgentLookup,
  type Invalidation,
  type RegistryStore,
} from './registry.js';

export interface RedisStoreOptions extends RedisConnectionOptions {
  readonly commandTimeoutMs: number;
  readonly prefix: string;
  readonly versionPollMs: number;
}

export class RedisStore implements RegistryStore {
  readonly kind = 'redis';
  readonly keys: RedisKeys;
  private readonly client: Client;
  private readonly admin: Client;
  private readonly invalidations: RedisInvalidations;
  private readonly writes: RedisWrites;
  // Set by a failed or timed-out read, cleared by the next answer: a paused or overloaded Redis
  // keeps its TCP connection "ready" while answering nothing, and readiness must say so.
  private failing = false;
  private readonly readDeadlineMs: number;

  constructor(
    opts: RedisStoreOptions,
    logger?: Logger,
    private readonly metrics?: Metrics,
  ) {
    this.keys = new RedisKeys(opts.prefix);
    this.readDeadlineMs = opts.commandTimeoutMs;
    // Check path: fail fast, bounded by read()'s deadline alone (an ioredis commandTimeout too
    // would be a second timer per read, and one that fires before a waiting answer is read).
    // Admin/import path: the check budget is too tight for bulk writes.
    this.client = connect(opts, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
    });
    this.admin = connect(opts, {
      commandTimeout: 5000,
      enableOfflineQueue: true,
      maxRetriesPerRequest: 2,
    });
    for (const c of [this.client, this.admin]) defineLuaCommands(c);
    this.client.on('ready', () => metrics?.redisUp.set(1));
    this.client.on('end', () => metrics?.redisUp.set(0));
    this.client.on('close', () => metrics?.redisUp.set(0));
    this.client.on('error', (err: Error) =>
      logger?.warn({ err: err.message }, 'redis connection error'),
    );
    this.admin.on('error', () => undefined);
    this.invalidations = new RedisInvalidations(
      opts,
      this.keys.channel,
      () => this.read(() => this.client.get(this.keys.version), 'version'),
      opts.versionPollMs,
      logger,
      metrics,
    );
    this.writes = new RedisWrites(
      this.admin,
      this.keys,
      this,
      (cacheKeys) => this.invalidations.emit(cacheKeys),
      metrics,
    );
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

  onInvalidate(listener: (keys: Invalidation) => void): void {
    this.invalidations.onInvalidate(listener);
  }

  async findAgent(lookup: AgentLookup): Promise<Agent | undefined> {
    const json =
      lookup.by === 'id'
        ? await this.read(() => this.client.get(this.keys.agent(lookup.value)))
        : await this.read(() =>
            lua(this.client).aaLookup(this.keys.index(lookup), `${this.keys.tag}:agent:`),
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
    await this.writes.putAgent(agent, expected);
  }
  async deleteAgent(agentId: string): Promise<boolean> {
    return this.writes.deleteAgent(agentId);
  }
  async putKey(key: ApiKey): Promise<void> {
    await this.writes.putKey(key);
  }
  async deleteKey(keyId: string): Promise<boolean> {
    return this.writes.deleteKey(keyId);
  }
  async putTenant(t: Tenant): Promise<void> {
    await this.writes.putTenant(t);
  }
  async deleteTenant(tenantId: string): Promise<boolean> {
    return this.writes.deleteTenant(tenantId);
  }
  async importData(data: RegistryData, opts: { replace: boolean }): Promise<void> {
    await this.writes.importData(data, opts);
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

  async close(): Promise<void> {
    // The invalidations stop polling first, before any connection goes away.
    await Promise.all([this.invalidations.close(), closeClients([this.client, this.admin])]);
  }

  // Listing is for the admin API and export, so it uses the admin connection's patient budget.
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

  // The deadline bounds the command and whatever ioredis does around it (Cluster redirections,
  // CLUSTERDOWN retries). Node runs due timers before it polls sockets, so after this process
  // stalls — a GC pause, a burst of queued requests, a vCPU the host took away — a plain timer
  // would fire while Redis's answer sits unread in the socket: the check would be denied
  // registry_unavailable and readiness would drop though Redis answered in a millisecond. The
  // deadline therefore rejects from setImmediate, after the next poll has read what arrived; a
  // Redis that really did not answer is still failed within that one loop turn.
  private async read<T>(fn: () => Promise<T>, operation = 'lookup'): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const deadline = new Promise<never>((_, reject) => {
        const expire = () => reject(new Error('registry read deadline exceeded'));
        timer = setTimeout(() => setImmediate(expire), this.readDeadlineMs);
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
}
