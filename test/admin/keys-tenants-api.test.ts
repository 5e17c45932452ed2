// Keys and tenants through the admin API: a minted secret works for a Check and stops working
// when revoked; tenants in use cannot be deleted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestApiKey } from '../../src/credentials/api-key.js';
import { EnvoyCheckClient, reasonOf, setHeaders } from '../helpers/official-envoy.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { AdminClient, bootstrapConfig, tempRegistry } from './admin-helpers.js';

describe('admin API: keys', () => {
  let srv: TestServer;
  let admin: AdminClient;
  let envoy: EnvoyCheckClient;

  beforeAll(async () => {
    srv = await startTestServer({
      registry_file: tempRegistry(),
      spiffe_trust_domains: 'example.org',
      ...bootstrapConfig,
    });
    admin = new AdminClient(srv.app.adminPort!);
    envoy = new EnvoyCheckClient(srv.address);
  });
  afterAll(async () => {
    envoy.close();
    await srv.stop();
  });

  it('mints a key: the secret is in the 201 body once, only its digest is stored', async () => {
    const res = await admin.post('/v1/keys', {
      tenant: 'acme',
      key_id: 'k-alpha',
      label: 'alpha key',
    });
    expect(res.status).toBe(201);
    expect(res.body.secret).toMatch(/^aak_k-alpha\./);
    expect(res.body.key).toMatchObject({ key_id: 'k-alpha', scope: 'evaluate', status: 'active' });
    expect(res.body.key).not.toHaveProperty('digest');
    const stored = await srv.app.store.getKey('k-alpha');
    expect(stored?.digest).toBe(digestApiKey(res.body.secret));
    expect(JSON.stringify(stored)).not.toContain(res.body.secret.split('.')[1]);
    expect((await admin.get('/v1/keys/k-alpha')).body).not.toHaveProperty('secret');
  });

  it('the new key allows a Check (x-api-key + x-agent-id); revoking it denies invalid_api_key', async () => {
    const { body } = await admin.post('/v1/keys', { tenant: 'acme', key_id: 'k-use' });
    const call = () =>
      envoy.check({ headers: { 'x-api-key': body.secret, 'x-agent-id': 'alpha' } });
    const ok = await call();
    expect(reasonOf(ok)).toBe('allowed');
    expect(setHeaders(ok)['x-agent-identity-method']).toBe('self_declared');
    const revoked = await admin.post('/v1/keys/k-use/revoke');
    expect(revoked.body.status).toBe('revoked');
    expect(reasonOf(await call())).toBe('invalid_api_key');
    // Idempotent, and terminal: PATCH cannot bring it back.
    expect((await admin.post('/v1/keys/k-use/revoke')).status).toBe(200);
    expect((await admin.patch('/v1/keys/k-use', { label: 'again' })).body.error).toBe(
      'invalid_transition',
    );
  });

  it('PATCH changes only label, binding, roles and expiry', async () => {
    const ok = await admin.patch('/v1/keys/k-alpha', {
      label: 'renamed',
      permitted_roles: ['reader'],
    });
    expect(ok.body).toMatchObject({ label: 'renamed', permitted_roles: ['reader'] });
    const fixed = await admin.patch('/v1/keys/k-alpha', {
      scope: 'admin',
      digest: '0'.repeat(64),
      status: 'active',
    });
    expect(fixed.status).toBe(400);
    expect(fixed.body.problems).toHaveLength(3);
    expect((await admin.get('/v1/keys/k-alpha')).body.scope).toBe('evaluate');
  });

  it('validates creation: bad scope, unknown field, unknown tenant, duplicate id', async () => {
    const bad = await admin.post('/v1/keys', { tenant: 'acme', scope: 'root', secret: 'mine' });
    expect(bad.status).toBe(400);
    expect(bad.body.problems).toHaveLength(2);
    expect((await admin.post('/v1/keys', { tenant: 'nowhere' })).body.problems[0]).toMatch(
      /^tenant:/,
    );
    expect((await admin.post('/v1/keys', { tenant: 'acme', key_id: 'k-alpha' })).body.error).toBe(
      'already_exists',
    );
  });

  it('deletes a key; 404 afterwards', async () => {
    expect((await admin.delete('/v1/keys/k-alpha')).status).toBe(204);
    expect((await admin.get('/v1/keys/k-alpha')).status).toBe(404);
    expect((await admin.delete('/v1/keys/k-alpha')).status).toBe(404);
  });
});

describe('admin API: tenants', () => {
  let srv: TestServer;
  let admin: AdminClient;

  beforeAll(async () => {
    srv = await startTestServer({ registry_file: tempRegistry(), ...bootstrapConfig });
    admin = new AdminClient(srv.app.adminPort!);
  });
  afterAll(async () => {
    await srv.stop();
  });

  it('creates, reads, replaces and deletes a tenant', async () => {
    const created = await admin.post('/v1/tenants', { tenant_id: 'globex' });
    expect(created.status).toBe(201);
    expect(created.body.require_agent_id).toBe(false);
    expect((await admin.post('/v1/tenants', { tenant_id: 'globex' })).body.error).toBe(
      'already_exists',
    );
    const put = await admin.put('/v1/tenants/globex', {
      require_agent_id: true,
      display_name: 'Globex',
    });
    expect(put.body).toMatchObject({
      tenant_id: 'globex',
      require_agent_id: true,
      created_at: created.body.created_at,
    });
    expect((await admin.get('/v1/tenants/globex')).body.display_name).toBe('Globex');
    expect((await admin.delete('/v1/tenants/globex')).status).toBe(204);
    expect((await admin.get('/v1/tenants/globex')).status).toBe(404);
    expect((await admin.put('/v1/tenants/globex', {})).status).toBe(404);
  });

  it('refuses to delete a tenant that agents or keys still use: 409 tenant_in_use', async () => {
    const res = await admin.delete('/v1/tenants/acme');
    expect([res.status, res.body.error]).toEqual([409, 'tenant_in_use']);
    expect((await admin.get('/v1/tenants/acme')).status).toBe(200);
  });

  it('validates tenants', async () => {
    const res = await admin.post('/v1/tenants', {
      tenant_id: 'has space',
      require_agent_id: 'yes',
    });
    expect(res.status).toBe(400);
    expect(res.body.problems).toHaveLength(2);
    expect((await admin.put('/v1/tenants/acme', { tenant_id: 'other' })).body.problems[0]).toMatch(
      /^tenant_id:/,
    );
  });
});
