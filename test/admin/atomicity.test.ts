// "Nothing half-written": a write that fails part-way leaves no trace, in Redis (the Lua script
// checks every index before its first write) and in the embedded file (the whole next state is
// validated before the file is replaced).
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryService } from '../../src/admin/registry-service.js';
import { AdminError } from '../../src/admin/admin-error.js';
import { EmbeddedStore } from '../../src/registry/embedded-store.js';
import { RedisStore } from '../../src/registry/redis-store.js';
import { TestRedis } from '../helpers/redis.js';
import { fingerprintOf, tempRegistry } from './admin-helpers.js';

const code = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: unknown) => (e instanceof AdminError ? e.code : String(e)),
  );

describe('atomic writes: Redis', () => {
  let redis: TestRedis;
  let store: RedisStore;
  let svc: RegistryService;

  beforeAll(async () => {
    redis = await TestRedis.start();
    store = new RedisStore({
      url: redis.url,
      commandTimeoutMs: 1000,
      prefix: 'atom',
      versionPollMs: 60_000,
    });
    await store.waitReady(3000);
    svc = new RegistryService(store);
    await svc.tenants.create({ tenant_id: 'acme' }, 'test');
    await svc.agents.create(
      { agent_id: 'owner', tenant: 'acme', agent_role: 'r', cert_fingerprint: fingerprintOf(7) },
      'test',
    );
  });
  afterAll(async () => {
    await store.close();
    await redis.stop();
  });

  it('a CONFLICT on the second index writes neither the record nor the first index', async () => {
    const spiffe = 'spiffe://example.org/agents/half';
    const versionBefore = redis.cli('GET', '{atom}:version').trim();
    // agentLookups order: spiffe (free) first, then fingerprint (owned by `owner`).
    const result = await code(
      svc.agents.create(
        {
          agent_id: 'half',
          tenant: 'acme',
          agent_role: 'r',
          spiffe_id: spiffe,
          cert_fingerprint: fingerprintOf(7),
        },
        'test',
      ),
    );
    expect(result).toBe('conflict');
    expect(redis.cli('EXISTS', '{atom}:agent:half').trim()).toBe('0');
    expect(redis.cli('EXISTS', `{atom}:idx:spiffe:${spiffe}`).trim()).toBe('0');
    expect(redis.cli('SISMEMBER', '{atom}:agents', 'half').trim()).toBe('0');
    expect(redis.cli('GET', `{atom}:idx:fingerprint:${fingerprintOf(7)}`).trim()).toBe('owner');
    expect(redis.cli('GET', '{atom}:version').trim()).toBe(versionBefore);
  });

  it('a conflicting update of an existing agent leaves its record and indexes as they were', async () => {
    await svc.agents.create(
      {
        agent_id: 'other',
        tenant: 'acme',
        agent_role: 'r',
        spiffe_id: 'spiffe://example.org/agents/other',
      },
      'test',
    );
    const before = redis.cli('GET', '{atom}:agent:other');
    const result = await code(
      svc.agents.patch(
        'other',
        { spiffe_id: 'spiffe://example.org/agents/moved', cert_fingerprint: fingerprintOf(7) },
        'test',
      ),
    );
    expect(result).toBe('conflict');
    expect(redis.cli('GET', '{atom}:agent:other')).toBe(before);
    expect(redis.cli('GET', '{atom}:idx:spiffe:spiffe://example.org/agents/other').trim()).toBe(
      'other',
    );
    expect(redis.cli('EXISTS', '{atom}:idx:spiffe:spiffe://example.org/agents/moved').trim()).toBe(
      '0',
    );
  });
});

describe('atomic writes: embedded file', () => {
  it('a conflicting write leaves the file byte-identical and the registry unchanged', async () => {
    const path = tempRegistry();
    const store = new EmbeddedStore(path);
    const svc = new RegistryService(store);
    const bytes = readFileSync(path);
    const result = await code(
      svc.agents.create(
        {
          agent_id: 'copycat',
          tenant: 'acme',
          agent_role: 'r',
          spiffe_id: 'spiffe://example.org/agents/alpha',
          status: 'approved',
        },
        'test',
      ),
    );
    expect(result).toBe('conflict');
    expect(readFileSync(path).equals(bytes)).toBe(true);
    expect(await store.findAgent({ by: 'id', value: 'copycat' })).toBeUndefined();
    expect(
      (await store.findAgent({ by: 'spiffe', value: 'spiffe://example.org/agents/alpha' }))
        ?.agent_id,
    ).toBe('alpha');
    await store.close();
  });

  it('an invalid record is refused before the store is touched', async () => {
    const path = tempRegistry();
    const store = new EmbeddedStore(path);
    const bytes = readFileSync(path);
    const result = await code(
      new RegistryService(store).agents.patch('alpha', { spiffe_id: 'http://x' }, 'test'),
    );
    expect(result).toBe('invalid_request');
    expect(readFileSync(path).equals(bytes)).toBe(true);
  });
});

describe('compare-and-set on agent writes', () => {
  it('a write built from an old read cannot undo a concurrent revocation (embedded and Redis)', async () => {
    const { EmbeddedStore } = await import('../../src/registry/embedded-store.js');
    const { parseRegistry } = await import('../../src/registry/registry-file.js');
    const data = parseRegistry(
      'agents: [{ agent_id: cas, tenant: acme, agent_role: r, status: approved, spiffe_id: spiffe://example.org/agents/cas }]',
    );
    const store = new EmbeddedStore(undefined, undefined, data);
    const read = (await store.findAgent({ by: 'id', value: 'cas' }))!;
    await store.putAgent({ ...read, status: 'revoked' }, read);
    await expect(
      store.putAgent({ ...read, display_name: 'stale edit' }, read),
    ).rejects.toMatchObject({
      code: 'conflict',
    });
    expect((await store.findAgent({ by: 'id', value: 'cas' }))!.status).toBe('revoked');
  });
});
