// Opening ioredis connections to a single server, Sentinel or Cluster with one set of options, so
// the check, admin and subscriber connections differ only in their timeout and queueing budget.
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { LOOKUP_LUA, WRITE_RECORD_LUA } from './redis-keys.js';

/** Where Redis is and how to reach it; the store's options add timeouts and the key prefix. */
export interface RedisConnectionOptions {
  readonly url?: string | undefined;
  readonly sentinels?: readonly string[];
  readonly sentinelName?: string;
  readonly clusterNodes?: readonly string[];
  readonly password?: string | undefined;
  readonly tls?: boolean;
}

/** Per-connection budget: the check path fails fast, the admin and subscriber paths wait. */
export interface ConnectionOptions {
  readonly commandTimeout?: number;
  readonly enableOfflineQueue: boolean;
  readonly maxRetriesPerRequest: number | null;
}

export type Client = Redis | Cluster;

/** The scripts from redis-keys.ts, as ioredis exposes them once defined on a connection. */
export interface LuaCommands {
  aaLookup(indexKey: string, recordPrefix: string): Promise<string | null>;
  aaWrite(numKeys: number, ...args: string[]): Promise<number>;
}

export function defineLuaCommands(c: Client): void {
  c.defineCommand('aaLookup', { numberOfKeys: 1, lua: LOOKUP_LUA });
  c.defineCommand('aaWrite', { lua: WRITE_RECORD_LUA });
}

/** A connection on which defineLuaCommands() has run, typed with its scripts. */
export function lua(c: Client): LuaCommands {
  return c as unknown as LuaCommands;
}

// Reconnect quickly at first, then every 2 s at most; jitter keeps replicas from reconnecting in step.
export function reconnectDelay(times: number): number {
  return Math.min(50 * 2 ** Math.min(times, 6), 2000) + Math.floor(Math.random() * 50);
}

export function connect(o: RedisConnectionOptions, extra: ConnectionOptions): Client {
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
    // they connect; a command timeout, or the check path's own read deadline, bounds that), and
    // node connections do not reconnect on their own: the Cluster refreshes its slot map and
    // reconnects instead.
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

/** Closes connections, politely where Redis still answers; never waits on a dead one. */
export async function closeClients(clients: readonly Client[]): Promise<void> {
  // quit() waits for a reply that never comes while Redis is down: only ask a live connection.
  const bounded = (c: Client) =>
    c.status === 'ready'
      ? Promise.race([c.quit(), new Promise((r) => setTimeout(r, 500))])
      : Promise.resolve();
  await Promise.allSettled(clients.map(bounded));
  for (const c of clients) c.disconnect();
}

/** Parses `host:port` from the Sentinel and Cluster node lists; the port defaults to 6379. */
export function hostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  return i === -1 ? { host: s, port: 6379 } : { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
}
