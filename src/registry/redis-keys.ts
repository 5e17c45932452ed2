// The Redis key layout. Every registry key carries the same hash tag, `{<prefix>}`, so a record,
// its indexes and the version counter live in one Cluster slot and can be written by one Lua
// script atomically (on a single server, Sentinel or Cluster alike).
//
//   {p}:agent:<agent_id>            JSON agent record
//   {p}:key:<key_id>                JSON API key record (digest only, never the secret)
//   {p}:tenant:<tenant_id>          JSON tenant record
//   {p}:idx:spiffe:<spiffe id>      → agent_id
//   {p}:idx:fingerprint:<sha256>    → agent_id (current and previous fingerprint)
//   {p}:idx:oidc:<iss>|<sub>        → agent_id (both URI-component encoded)
//   {p}:idx:conjur:<acct>|<host>    → agent_id (both URI-component encoded)
//   {p}:agents / :keys / :tenants   sets of ids (listing, export)
//   {p}:version                     INCR on every write (replicas poll it to catch lost messages)
//   channel <p>:invalidate          JSON {"v": version, "keys": [cache keys] | "all"}
import type { AgentLookup } from './registry.js';

export class RedisKeys {
  readonly tag: string;
  readonly version: string;
  readonly agents: string;
  readonly keys: string;
  readonly tenants: string;
  readonly channel: string;

  constructor(prefix: string) {
    this.tag = `{${prefix}}`;
    this.version = `${this.tag}:version`;
    this.agents = `${this.tag}:agents`;
    this.keys = `${this.tag}:keys`;
    this.tenants = `${this.tag}:tenants`;
    this.channel = `${prefix}:invalidate`;
  }

  agent(id: string): string {
    return `${this.tag}:agent:${id}`;
  }
  key(id: string): string {
    return `${this.tag}:key:${id}`;
  }
  tenant(id: string): string {
    return `${this.tag}:tenant:${id}`;
  }

  /** The index key for a lookup, or the record key for lookups by id. */
  index(l: AgentLookup): string {
    switch (l.by) {
      case 'id':
        return this.agent(l.value);
      case 'spiffe':
        return `${this.tag}:idx:spiffe:${l.value}`;
      case 'fingerprint':
        return `${this.tag}:idx:fingerprint:${l.value}`;
      case 'oidc':
        return `${this.tag}:idx:oidc:${encodeURIComponent(l.issuer)}|${encodeURIComponent(l.subject)}`;
      case 'conjur':
        return `${this.tag}:idx:conjur:${encodeURIComponent(l.account)}|${encodeURIComponent(l.hostId)}`;
    }
  }
}

// KEYS: record, set, version, new index keys..., old index keys...
// ARGV: json | '' (delete), id, expected current json | '' , nNew, nOld, channel, cache keys JSON
// Fails with STALE if the record changed since it was read, CONFLICT if an index belongs to
// another record; otherwise writes record, indexes, set and version, then publishes.
export const WRITE_RECORD_LUA = `
local cur = redis.call('GET', KEYS[1])
if (cur or '') ~= ARGV[3] then return redis.error_reply('STALE record changed concurrently') end
local nNew = tonumber(ARGV[4])
local nOld = tonumber(ARGV[5])
for i = 1, nNew do
  local owner = redis.call('GET', KEYS[3 + i])
  if owner and owner ~= ARGV[2] then return redis.error_reply('CONFLICT ' .. KEYS[3 + i] .. ' belongs to ' .. owner) end
end
for i = 1, nOld do
  local k = KEYS[3 + nNew + i]
  if redis.call('GET', k) == ARGV[2] then redis.call('DEL', k) end
end
for i = 1, nNew do redis.call('SET', KEYS[3 + i], ARGV[2]) end
if ARGV[1] == '' then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('SADD', KEYS[2], ARGV[2])
end
local v = redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[6], '{"v":' .. v .. ',"keys":' .. ARGV[7] .. '}')
return v
`;

// KEYS: index key. ARGV: record key prefix. One round trip for index → record.
export const LOOKUP_LUA = `
local id = redis.call('GET', KEYS[1])
if not id then return false end
return redis.call('GET', ARGV[1] .. id)
`;
