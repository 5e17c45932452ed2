// Admin API authentication and transport rules: who may call, and what malformed calls get.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { AdminClient, BOOTSTRAP, bootstrapConfig, tempRegistry } from './admin-helpers.js';

describe('admin API authentication', () => {
  let srv: TestServer;
  let admin: AdminClient;
  let evaluateKey: string;
  let adminKey: string;
  let adminKeyId: string;

  beforeAll(async () => {
    srv = await startTestServer({ registry_file: tempRegistry(), ...bootstrapConfig });
    admin = new AdminClient(srv.app.adminPort!);
    const ev = await admin.post('/v1/keys', { tenant: 'acme', scope: 'evaluate' });
    evaluateKey = ev.body.secret;
    const ad = await admin.post('/v1/keys', { tenant: 'acme', scope: 'admin', label: 'ops' });
    adminKey = ad.body.secret;
    adminKeyId = ad.body.key.key_id;
  });
  afterAll(async () => {
    await srv.stop();
  });

  it('refuses a call without a key: 401 unauthorized', async () => {
    const res = await admin.withKey(null).get('/v1/agents');
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('unauthorized');
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('refuses a wrong secret, an unknown key id and a malformed key alike: 401', async () => {
    const wrongSecret = adminKey.slice(0, -4) + 'AAAA';
    for (const key of [wrongSecret, 'aak_nobody.' + 'x'.repeat(43), 'not-a-key']) {
      const res = await admin.withKey(key).get('/v1/agents');
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('unauthorized');
    }
  });

  it('refuses a valid key without the admin scope: 403 forbidden', async () => {
    const res = await admin.withKey(evaluateKey).get('/v1/agents');
    expect(res.status).toBe(403);
    expect(res.body.error).toBe('forbidden');
  });

  it('accepts an admin-scope key from the registry, as Bearer or x-api-key', async () => {
    expect((await admin.withKey(adminKey).get('/v1/agents')).status).toBe(200);
    const viaHeader = await admin
      .withKey(null)
      .call('GET', '/v1/agents', undefined, { 'x-api-key': adminKey });
    expect(viaHeader.status).toBe(200);
  });

  it('accepts the bootstrap key, known only by its digest in config', async () => {
    const res = await admin.get('/v1/tenants');
    expect(res.status).toBe(200);
    expect(res.body.tenants.map((t: { tenant_id: string }) => t.tenant_id)).toContain('acme');
  });

  it('refuses two different keys in Authorization and x-api-key', async () => {
    const res = await admin.call('GET', '/v1/agents', undefined, {
      authorization: `Bearer ${BOOTSTRAP.secret}`,
      'x-api-key': evaluateKey,
    });
    expect(res.status).toBe(401);
  });

  it('stops accepting an admin key as soon as it is revoked', async () => {
    const k = await admin.post('/v1/keys', { tenant: 'acme', scope: 'admin' });
    const temp = admin.withKey(k.body.secret);
    expect((await temp.get('/v1/agents')).status).toBe(200);
    expect((await admin.post(`/v1/keys/${k.body.key.key_id}/revoke`)).status).toBe(200);
    expect((await temp.get('/v1/agents')).status).toBe(401);
  });

  it('refuses an expired admin key', async () => {
    const k = await admin.post('/v1/keys', {
      tenant: 'acme',
      scope: 'admin',
      expires_at: '2000-01-01T00:00:00Z',
    });
    expect(k.status).toBe(201);
    expect((await admin.withKey(k.body.secret).get('/v1/agents')).status).toBe(401);
  });

  it('answers unknown routes 404 and wrong methods 405 with Allow', async () => {
    expect((await admin.get('/v1/nothing')).body.error).toBe('not_found');
    const res = await admin.call('PATCH', '/v1/tenants/acme', {});
    expect(res.status).toBe(405);
    expect(res.body.error).toBe('method_not_allowed');
    expect(res.headers.get('allow')).toBe('GET, PUT, DELETE');
  });

  it('refuses bodies over 1 MiB (413), non-JSON types (415) and broken JSON (400)', async () => {
    const big = JSON.stringify({ tenant_id: 'big', display_name: 'x'.repeat(1024 * 1024) });
    const tooBig = await admin.post('/v1/tenants', big);
    expect(tooBig.status).toBe(413);
    expect(tooBig.body.error).toBe('payload_too_large');
    const form = await admin.call('POST', '/v1/tenants', 'tenant_id=x', {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(form.status).toBe(415);
    expect(form.body.error).toBe('unsupported_media_type');
    const broken = await admin.post('/v1/tenants', '{"tenant_id": ');
    expect(broken.status).toBe(400);
    expect(broken.body.error).toBe('invalid_request');
  });

  it('never returns a key digest by default, and never a secret after creation', async () => {
    const list = await admin.get('/v1/keys');
    for (const k of list.body.keys) expect(k).not.toHaveProperty('digest');
    const one = await admin.get(`/v1/keys/${adminKeyId}`);
    expect(one.body).not.toHaveProperty('digest');
    expect(JSON.stringify(one.body)).not.toContain(adminKey.split('.')[1]);
    const withDigest = await admin.get(`/v1/keys/${adminKeyId}?include_digest=true`);
    expect(withDigest.body.digest).toMatch(/^[0-9a-f]{64}$/);
  });
});
