// Agents through the admin API, checked against real Check calls (Envoy's official protos):
// validation, conflicts, status actions, rotation with a grace period.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnvoyCheckClient, reasonOf } from '../helpers/official-envoy.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { AdminClient, bootstrapConfig, fingerprintOf, tempRegistry } from './admin-helpers.js';

describe('admin API: agents', () => {
  let srv: TestServer;
  let admin: AdminClient;
  let envoy: EnvoyCheckClient;
  const spiffe = (n: string) => `spiffe://example.org/agents/${n}`;
  const agent = (id: string, extra: Record<string, unknown> = {}) => ({
    agent_id: id,
    tenant: 'acme',
    agent_role: 'reporter',
    spiffe_id: spiffe(id),
    ...extra,
  });

  beforeAll(async () => {
    srv = await startTestServer({
      registry_file: tempRegistry(),
      spiffe_trust_domains: 'example.org',
      // Forwarded fingerprints let the test present a certificate by its fingerprint alone.
      cert_trusted_issuers: 'CN=test-ca',
      trust_forwarded_headers: true,
      ...bootstrapConfig,
    });
    admin = new AdminClient(srv.app.adminPort!);
    envoy = new EnvoyCheckClient(srv.address);
  });
  afterAll(async () => {
    envoy.close();
    await srv.stop();
  });

  it('creates an agent as pending, stamping created_at and updated_at', async () => {
    const res = await admin.post('/v1/agents', agent('a1'));
    expect(res.status).toBe(201);
    expect(res.body.status).toBe('pending');
    expect(res.body.created_at).toBe(res.body.updated_at);
    expect(Date.parse(res.body.created_at)).toBeGreaterThan(Date.now() - 60_000);
    expect((await admin.get('/v1/agents/a1')).body.agent_id).toBe('a1');
    expect(reasonOf(await envoy.check({ principal: spiffe('a1') }))).toBe('agent_not_approved');
  });

  it('lists every problem of a bad record in one 400', async () => {
    const res = await admin.post('/v1/agents', {
      ...agent('bad'),
      spiffe_id: 'spiffe://Example.org/x/',
      cert_fingerprint: 'not-a-fingerprint',
      colour: 'blue',
    });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
    expect(res.body.problems).toHaveLength(3);
    const text = res.body.problems.join('\n');
    expect(text).toMatch(/spiffe_id/);
    expect(text).toMatch(/cert_fingerprint/);
    expect(text).toMatch(/colour/);
    expect((await admin.get('/v1/agents/bad')).status).toBe(404);
  });

  it('refuses server-owned fields and unknown tenants', async () => {
    const stamped = await admin.post(
      '/v1/agents',
      agent('s1', { created_at: '2020-01-01T00:00:00Z' }),
    );
    expect(stamped.status).toBe(400);
    expect(stamped.body.problems[0]).toMatch(/^created_at:/);
    const orphan = await admin.post('/v1/agents', agent('s2', { tenant: 'nowhere' }));
    expect(orphan.status).toBe(400);
    expect(orphan.body.problems[0]).toMatch(/^tenant:/);
  });

  it('answers 409 for an existing id and for an index another agent owns', async () => {
    expect((await admin.post('/v1/agents', agent('a1'))).body.error).toBe('already_exists');
    const taken = await admin.post('/v1/agents', agent('a2', { spiffe_id: spiffe('alpha') }));
    expect(taken.status).toBe(409);
    expect(taken.body.error).toBe('conflict');
    expect((await admin.get('/v1/agents/a2')).status).toBe(404);
  });

  it('answers 404 for a missing agent on every verb', async () => {
    for (const [m, p] of [
      ['GET', '/v1/agents/ghost'],
      ['DELETE', '/v1/agents/ghost'],
      ['POST', '/v1/agents/ghost/approve'],
    ] as const) {
      const res = await admin.call(m, p);
      expect([res.status, res.body.error]).toEqual([404, 'not_found']);
    }
    expect((await admin.patch('/v1/agents/ghost', { display_name: 'x' })).status).toBe(404);
  });

  it('follows the status machine, and each status is enforced on the next Check', async () => {
    const id = 'sm1';
    await admin.post('/v1/agents', agent(id));
    const step = async (action: string) => {
      const res = await admin.post(`/v1/agents/${id}/${action}`);
      return res.status === 200 ? res.body.status : res.body.error;
    };
    expect(await step('reinstate')).toBe('invalid_transition');
    expect(await step('approve')).toBe('approved');
    expect(reasonOf(await envoy.check({ principal: spiffe(id) }))).toBe('allowed');
    expect(await step('approve')).toBe('invalid_transition');
    expect(await step('suspend')).toBe('suspended');
    expect(reasonOf(await envoy.check({ principal: spiffe(id) }))).toBe('agent_not_approved');
    expect(await step('reinstate')).toBe('approved');
    expect(reasonOf(await envoy.check({ principal: spiffe(id) }))).toBe('allowed');
    expect(await step('revoke')).toBe('revoked');
    expect(reasonOf(await envoy.check({ principal: spiffe(id) }))).toBe('agent_not_approved');
    expect(await step('revoke')).toBe('revoked');
    for (const a of ['approve', 'reinstate', 'suspend'])
      expect(await step(a)).toBe('invalid_transition');
  });

  it('does not let PUT or PATCH change the status or the id', async () => {
    const put = await admin.put('/v1/agents/a1', { ...agent('a1'), status: 'approved' });
    expect(put.status).toBe(400);
    expect(put.body.problems[0]).toMatch(/^status:/);
    const patch = await admin.patch('/v1/agents/a1', { agent_id: 'other' });
    expect(patch.body.problems[0]).toMatch(/^agent_id:/);
  });

  it('PUT replaces (keeping created_at), PATCH merges and null removes a field', async () => {
    const before = (await admin.get('/v1/agents/a1')).body;
    const put = await admin.put('/v1/agents/a1', { ...agent('a1'), display_name: 'Agent One' });
    expect(put.status).toBe(200);
    expect(put.body.created_at).toBe(before.created_at);
    const patched = await admin.patch('/v1/agents/a1', { permitted_roles: ['reporter', 'reader'] });
    expect(patched.body.display_name).toBe('Agent One');
    expect(patched.body.permitted_roles).toEqual(['reporter', 'reader']);
    const removed = await admin.patch('/v1/agents/a1', { display_name: null });
    expect(removed.body).not.toHaveProperty('display_name');
    expect(
      (await admin.get('/v1/agents?tenant=acme&status=pending')).body.agents.map(
        (a: { agent_id: string }) => a.agent_id,
      ),
    ).toContain('a1');
  });

  it('rotates a certificate: the previous fingerprint works until its grace deadline', async () => {
    const [oldFp, newFp] = [fingerprintOf(1), fingerprintOf(2)];
    await admin.post(
      '/v1/agents',
      agent('rot', { cert_fingerprint: oldFp, credential_type: 'pki' }),
    );
    await admin.post('/v1/agents/rot/approve');
    const byFp = (fp: string) => envoy.check({ headers: { 'x-client-cert-fingerprint': fp } });
    expect(reasonOf(await byFp(oldFp))).toBe('allowed');

    const res = await admin.post('/v1/agents/rot/rotate-certificate', {
      cert_fingerprint: newFp,
      grace_seconds: 3600,
    });
    expect(res.status).toBe(200);
    expect(res.body.cert_fingerprint).toBe(newFp);
    expect(res.body.cert_fingerprint_prev).toBe(oldFp);
    const deadline = Date.parse(res.body.cert_fingerprint_prev_expires_at);
    expect(Math.abs(deadline - (Date.now() + 3600_000))).toBeLessThan(60_000);
    expect((await srv.app.store.findAgent({ by: 'fingerprint', value: oldFp }))?.agent_id).toBe(
      'rot',
    );
    expect(reasonOf(await byFp(oldFp))).toBe('allowed');
    expect(reasonOf(await byFp(newFp))).toBe('allowed');

    // A second rotation with no grace drops both older fingerprints at once.
    const third = fingerprintOf(3);
    const again = await admin.post('/v1/agents/rot/rotate-certificate', {
      cert_fingerprint: third,
      grace_seconds: 0,
    });
    expect(again.body).not.toHaveProperty('cert_fingerprint_prev');
    expect(reasonOf(await byFp(oldFp))).not.toBe('allowed');
    expect(reasonOf(await byFp(newFp))).not.toBe('allowed');
    expect(reasonOf(await byFp(third))).toBe('allowed');
  });

  it('validates rotation requests', async () => {
    const cases = [
      { cert_fingerprint: 'zz', grace_seconds: 10 },
      { cert_fingerprint: fingerprintOf(9), grace_seconds: -1 },
      { cert_fingerprint: fingerprintOf(9), grace_seconds: 10, extra: 1 },
      { cert_fingerprint: fingerprintOf(3), grace_seconds: 10 },
    ];
    for (const body of cases) {
      const res = await admin.post('/v1/agents/rot/rotate-certificate', body);
      expect([res.status, res.body.error]).toEqual([400, 'invalid_request']);
    }
    const taken = await admin.post('/v1/agents/a1/rotate-certificate', {
      cert_fingerprint: fingerprintOf(3),
      grace_seconds: 0,
    });
    expect(taken.body.error).toBe('conflict');
  });

  it('deletes an agent: 204, then unknown to Check', async () => {
    await admin.post('/v1/agents', agent('gone', { status: 'approved' }));
    expect(reasonOf(await envoy.check({ principal: spiffe('gone') }))).toBe('allowed');
    expect((await admin.delete('/v1/agents/gone')).status).toBe(204);
    expect(reasonOf(await envoy.check({ principal: spiffe('gone') }))).toBe('agent_not_registered');
  });
});
