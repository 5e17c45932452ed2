// The Redis store on a 3-master Redis Cluster and behind Sentinel, both owned by the test: import,
// allow, revoke, and the revocation reaching a warm cache through pub/sub (the version poll is set
// to a minute, so only the invalidation channel can make the deny arrive in time).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRegistry } from '../../src/registry/registry-file.js';
import { RedisStore } from '../../src/registry/redis-store.js';
import { EnvoyCheckClient, reasonOf } from '../helpers/official-envoy.js';
import { freePort, TestRedis } from '../helpers/redis.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const ALPHA = 'spiffe://example.org/agents/alpha';
const DELTA = 'spiffe://example.org/agents/delta';
const REGISTRY = () => parseRegistry(readFileSync('examples/registry.yaml', 'utf8'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, fn: () => Promise<boolean>, ms = 15_000): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < ms) {
    if (await fn().catch(() => false)) return Date.now() - start;
    await sleep(100);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

const reason = async (c: EnvoyCheckClient, principal: string) =>
  reasonOf(await c.check({ principal }));

/** Revokes alpha through `writer` and waits (bounded) for the server to deny it. */
async function revokeAndExpectDeny(writer: RedisStore, client: EnvoyCheckClient): Promise<number> {
  const alpha = (await writer.listAgents()).find((a) => a.agent_id === 'alpha')!;
  await writer.putAgent({ ...alpha, status: 'revoked' });
  return waitFor(
    'alpha denied after revocation',
    async () => (await reason(client, ALPHA)) === 'agent_not_approved',
    3_000,
  );
}

describe('Redis Cluster (3 masters)', () => {
  const nodes: TestRedis[] = [];
  let seed: RedisStore;
  let srv: TestServer;
  let client: EnvoyCheckClient;

  beforeAll(async () => {
    for (let i = 0; i < 3; i++)
      nodes.push(
        await TestRedis.start(['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf']),
      );
    const addrs = nodes.map((n) => `127.0.0.1:${n.port}`);
    execFileSync(
      'redis-cli',
      ['--cluster', 'create', ...addrs, '--cluster-replicas', '0', '--cluster-yes'],
      {
        encoding: 'utf8',
        timeout: 20_000,
      },
    );
    await waitFor('cluster_state:ok', async () =>
      nodes.every((n) => n.cli('CLUSTER', 'INFO').includes('cluster_state:ok')),
    );
    seed = new RedisStore({
      clusterNodes: addrs,
      commandTimeoutMs: 2_000,
      prefix: 'agent-authz',
      versionPollMs: 60_000,
    });
    await seed.waitReady(5_000);
    await seed.importData(REGISTRY(), { replace: true });
    srv = await startTestServer({
      redis_cluster_nodes: addrs.join(','),
      spiffe_trust_domains: 'example.org',
      registry_version_poll: '60s',
    });
    client = new EnvoyCheckClient(srv.address);
  });

  afterAll(async () => {
    client?.close();
    await srv?.stop();
    await seed?.close();
    for (const n of nodes) await n.stop();
  });

  it('keeps every registry key in one slot (one node), so record and indexes are written atomically', () => {
    const slot = Number(nodes[0]!.cli('CLUSTER', 'KEYSLOT', seed.keys.agent('alpha')).trim());
    for (const k of [
      seed.keys.version,
      seed.keys.agents,
      seed.keys.index({ by: 'spiffe', value: ALPHA }),
    ])
      expect(Number(nodes[0]!.cli('CLUSTER', 'KEYSLOT', k).trim())).toBe(slot);
    const sizes = nodes.map((n) => Number(n.cli('DBSIZE').trim()));
    expect(sizes.filter((s) => s > 0)).toHaveLength(1);
    expect(Math.max(...sizes)).toBeGreaterThan(10);
  });

  it('allows, denies, and sees a revocation through pub/sub on the cluster', async () => {
    expect(await reason(client, ALPHA)).toBe('allowed');
    expect(await reason(client, DELTA)).toBe('agent_not_approved');
    expect(await reason(client, 'spiffe://example.org/agents/nobody')).toBe('agent_not_registered');
    const took = await revokeAndExpectDeny(seed, client);
    console.log(`cluster: revocation seen ${took} ms after the write returned`);
    const text = await srv.app.metrics.registry.metrics();
    expect(text).toMatch(/^agent_authz_invalidation_channel_up 1$/m);
    expect(text).toMatch(/^agent_authz_registry_invalidations_total\{kind="keys"\} [1-9]/m);
  });

  it('refuses a write that would steal another agent’s index (the Lua script runs on the cluster)', async () => {
    const beta = (await seed.listAgents()).find((a) => a.agent_id === 'beta')!;
    await expect(
      seed.putAgent({ ...beta, spiffe_id: 'spiffe://example.org/agents/gamma' }),
    ).rejects.toMatchObject({
      code: 'conflict',
    });
    expect(
      (await seed.findAgent({ by: 'spiffe', value: 'spiffe://example.org/agents/beta' }))?.agent_id,
    ).toBe('beta');
  });
});

describe('Redis Sentinel', () => {
  let master: TestRedis;
  let replica: TestRedis;
  let sentinel: ChildProcess;
  let sentinelPort: number;
  let writer: RedisStore;
  let srv: TestServer;
  let client: EnvoyCheckClient;

  beforeAll(async () => {
    master = await TestRedis.start();
    replica = await TestRedis.start();
    replica.cli('REPLICAOF', '127.0.0.1', String(master.port));
    sentinelPort = await freePort();
    const conf = join(master.dir, 'sentinel.conf');
    writeFileSync(
      conf,
      [
        `port ${sentinelPort}`,
        'bind 127.0.0.1',
        `dir ${master.dir}`,
        `sentinel monitor mymaster 127.0.0.1 ${master.port} 1`,
        'sentinel down-after-milliseconds mymaster 1000',
        'sentinel failover-timeout mymaster 10000',
        '',
      ].join('\n'),
    );
    // Sentinel rewrites its config file, so it cannot run through TestRedis (config file first).
    sentinel = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    await waitFor('sentinel to know the master', async () => {
      const out = execFileSync(
        'redis-cli',
        ['-p', String(sentinelPort), 'SENTINEL', 'get-master-addr-by-name', 'mymaster'],
        {
          encoding: 'utf8',
          timeout: 2_000,
        },
      );
      return out.includes(String(master.port));
    });
    await waitFor('replica in sync', async () =>
      replica.cli('INFO', 'replication').includes('master_link_status:up'),
    );
    const sentinels = [`127.0.0.1:${sentinelPort}`];
    writer = new RedisStore({
      sentinels,
      sentinelName: 'mymaster',
      commandTimeoutMs: 2_000,
      prefix: 'agent-authz',
      versionPollMs: 60_000,
    });
    await writer.waitReady(5_000);
    await writer.importData(REGISTRY(), { replace: true });
    srv = await startTestServer({
      redis_sentinels: sentinels.join(','),
      redis_sentinel_name: 'mymaster',
      spiffe_trust_domains: 'example.org',
      registry_version_poll: '60s',
    });
    client = new EnvoyCheckClient(srv.address);
  });

  afterAll(async () => {
    client?.close();
    await srv?.stop();
    await writer?.close();
    if (sentinel !== undefined && sentinel.exitCode === null) {
      const exited = new Promise((r) => sentinel.once('exit', r));
      sentinel.kill('SIGKILL');
      await exited;
    }
    await replica?.stop();
    await master?.stop();
  });

  it('resolves the master through Sentinel: allow, then revocation through pub/sub', async () => {
    expect(await reason(client, ALPHA)).toBe('allowed');
    expect(await reason(client, DELTA)).toBe('agent_not_approved');
    const took = await revokeAndExpectDeny(writer, client);
    console.log(`sentinel: revocation seen ${took} ms after the write returned`);
  });

  it('follows a failover to the promoted replica without a restart', async () => {
    const alpha = (await writer.listAgents()).find((a) => a.agent_id === 'alpha')!;
    await writer.putAgent({ ...alpha, status: 'approved' });
    await waitFor(
      'alpha allowed again',
      async () => (await reason(client, ALPHA)) === 'allowed',
      3_000,
    );
    await waitFor(
      'replica caught up',
      async () => replica.cli('GET', writer.keys.agent('alpha')).includes('approved'),
      3_000,
    );
    await master.kill();
    const killedAt = Date.now();
    await waitFor(
      'sentinel to promote the replica',
      async () =>
        execFileSync(
          'redis-cli',
          ['-p', String(sentinelPort), 'SENTINEL', 'get-master-addr-by-name', 'mymaster'],
          {
            encoding: 'utf8',
            timeout: 2_000,
          },
        ).includes(String(replica.port)),
      20_000,
    );
    // New lookups are answered by the new master (unknown agents are never cached).
    await waitFor(
      'decisions from the new master',
      async () =>
        (await reason(client, 'spiffe://example.org/agents/x1')) === 'agent_not_registered',
      10_000,
    );
    console.log(
      `sentinel failover: decisions recovered ${Date.now() - killedAt} ms after the master was killed`,
    );
    const took = await revokeAndExpectDeny(writer, client);
    console.log(`sentinel after failover: revocation seen ${took} ms after the write returned`);
  });
});
