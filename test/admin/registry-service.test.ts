// The shared service: status machine, audit events for every change (never a secret), and the
// CLI running the same code against the embedded file.
import { writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AdminError } from '../../src/admin/admin-error.js';
import { RegistryService } from '../../src/admin/registry-service.js';
import { STATUS_ACTIONS, nextStatus } from '../../src/admin/status-transitions.js';
import type { AuditInput } from '../../src/audit/types.js';
import { agentsCommand, keysAdminCommand, tenantsCommand } from '../../src/cli/admin-commands.js';
import { AGENT_STATUSES } from '../../src/registry/records.js';
import { readRegistryFile } from '../../src/registry/registry-file.js';
import { EmbeddedStore } from '../../src/registry/embedded-store.js';
import { fingerprintOf, tempRegistry } from './admin-helpers.js';

describe('status machine', () => {
  it('allows exactly the documented transitions', () => {
    const table: string[] = [];
    for (const from of AGENT_STATUSES)
      for (const action of STATUS_ACTIONS) {
        try {
          table.push(`${from} ${action} → ${nextStatus(from, action) ?? 'unchanged'}`);
        } catch (err) {
          expect((err as AdminError).code).toBe('invalid_transition');
        }
      }
    expect(table).toEqual([
      'pending approve → approved',
      'pending revoke → revoked',
      'approved suspend → suspended',
      'approved revoke → revoked',
      'suspended reinstate → approved',
      'suspended revoke → revoked',
      'revoked revoke → unchanged',
    ]);
  });
});

describe('audit events', () => {
  const events: AuditInput[] = [];
  const svc = new RegistryService(new EmbeddedStore(tempRegistry()), {
    record: (e) => events.push(e),
    close: async () => undefined,
  });

  it('records every change once, with actor, action and result; failures carry only the code', async () => {
    await svc.agents.create({ agent_id: 'au1', tenant: 'acme', agent_role: 'r' }, 'key:ops');
    await svc.agents.transition('au1', 'approve', 'key:ops');
    await expect(svc.agents.transition('au1', 'reinstate', 'key:ops')).rejects.toMatchObject({
      code: 'invalid_transition',
    });
    await expect(
      svc.agents.create(
        {
          agent_id: 'au2',
          tenant: 'acme',
          agent_role: 'r',
          spiffe_id: 'spiffe://example.org/agents/alpha',
        },
        'key:ops',
      ),
    ).rejects.toMatchObject({ code: 'conflict' });
    expect(
      events.map((e) => e.type === 'admin' && [e.action, e.object_id, e.result, e.detail]),
    ).toEqual([
      ['agent.create', 'au1', 'ok', undefined],
      ['agent.approve', 'au1', 'ok', 'status=approved'],
      ['agent.reinstate', 'au1', 'error', 'invalid_transition'],
      ['agent.create', 'au2', 'error', 'conflict'],
    ]);
    for (const e of events)
      expect(e).toMatchObject({ type: 'admin', actor: 'key:ops', object_kind: 'agent' });
  });

  it('never puts a key secret or digest in an audit event', async () => {
    events.length = 0;
    const { key, secret } = await svc.keys.create(
      { tenant: 'acme', scope: 'admin' },
      'bootstrap:admin',
    );
    await svc.keys.revoke(key.key_id, 'bootstrap:admin');
    const text = JSON.stringify(events);
    expect(text).not.toContain(secret.split('.')[1]);
    expect(text).not.toContain(key.digest);
    expect(events.map((e) => e.type === 'admin' && e.action)).toEqual(['key.create', 'key.revoke']);
  });

  it('reads do not audit', async () => {
    events.length = 0;
    await svc.agents.list();
    await svc.keys.list();
    await svc.tenants.get('acme');
    expect(events).toEqual([]);
  });
});

describe('CLI: agents, tenants, keys (embedded file)', () => {
  let file: string;
  const run = async (cmd: typeof agentsCommand, argv: string[]) => {
    let out = '';
    let err = '';
    const sink = (f: (s: string) => void) =>
      new Writable({
        write(chunk, _e, cb) {
          f(String(chunk));
          cb();
        },
      });
    const code = await cmd(
      argv,
      sink((s) => (out += s)),
      sink((s) => (err += s)),
    );
    return { code, out, err };
  };
  const json = (s: string) => JSON.parse(s) as Record<string, unknown>;

  beforeAll(() => {
    file = tempRegistry();
    process.env.AGENT_AUTHZ_REGISTRY_FILE = file;
    process.env.AGENT_AUTHZ_AUDIT_SINK = 'none';
    delete process.env.REDIS_URL;
  });

  it('creates from a file, approves, rotates with a 24h grace and revokes, persisting each step', async () => {
    const spec = `${file}.agent.yaml`;
    writeFileSync(
      spec,
      'agent_id: cli1\ntenant: acme\nagent_role: r\ncert_fingerprint: ' + fingerprintOf(1) + '\n',
    );
    const created = await run(agentsCommand, ['create', '--file', spec]);
    expect(created.code).toBe(0);
    expect(json(created.out).status).toBe('pending');
    expect((await run(agentsCommand, ['approve', 'cli1'])).code).toBe(0);
    const rotated = await run(agentsCommand, [
      'rotate-cert',
      'cli1',
      '--fingerprint',
      fingerprintOf(2),
      '--grace',
      '24h',
    ]);
    const r = json(rotated.out);
    expect(r.cert_fingerprint_prev).toBe(fingerprintOf(1));
    expect(
      Math.abs(Date.parse(String(r.cert_fingerprint_prev_expires_at)) - Date.now() - 86_400_000),
    ).toBeLessThan(60_000);
    expect((await run(agentsCommand, ['revoke', 'cli1'])).code).toBe(0);
    const onDisk = readRegistryFile(file).agents.find((a) => a.agent_id === 'cli1');
    expect(onDisk).toMatchObject({ status: 'revoked', cert_fingerprint: fingerprintOf(2) });
    const listed = await run(agentsCommand, ['list', '--status', 'revoked']);
    expect((JSON.parse(listed.out) as { agent_id: string }[]).map((a) => a.agent_id)).toEqual([
      'cli1',
      'delta',
    ]);
  });

  it('reports refusals as code + problems on stderr with exit 1', async () => {
    const refused = await run(agentsCommand, ['reinstate', 'cli1']);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/^agent-authz: invalid_transition:/);
    const usage = await run(agentsCommand, ['rotate-cert', 'alpha', '--fingerprint', 'nope']);
    expect(usage.code).toBe(1);
    expect(usage.err).toMatch(/invalid_request/);
    expect(usage.err).toMatch(/cert_fingerprint:/);
  });

  it('manages tenants and refuses to delete one in use', async () => {
    expect(
      (await run(tenantsCommand, ['create', '--id', 'initech', '--require-agent-id'])).code,
    ).toBe(0);
    expect(json((await run(tenantsCommand, ['get', 'initech'])).out).require_agent_id).toBe(true);
    expect((await run(tenantsCommand, ['delete', 'initech'])).code).toBe(0);
    const inUse = await run(tenantsCommand, ['delete', 'acme']);
    expect([inUse.code, inUse.err.split(':')[1]?.trim()]).toEqual([1, 'tenant_in_use']);
  });

  it('keys create prints the secret once; keys list never shows digests', async () => {
    const created = await run(keysAdminCommand, [
      'create',
      '--tenant',
      'acme',
      '--key-id',
      'cli-key',
    ]);
    expect(created.out).toMatch(/^key_id: cli-key\nsecret: aak_cli-key\./);
    const listed = await run(keysAdminCommand, ['list']);
    expect(listed.out).not.toMatch(/digest/);
    expect((await run(keysAdminCommand, ['revoke', 'cli-key'])).code).toBe(0);
    expect(readRegistryFile(file).keys.find((k) => k.key_id === 'cli-key')?.status).toBe('revoked');
  });
});
