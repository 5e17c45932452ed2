// grpc.health.v1 Check and Watch, and the HTTP probes, across start-up and graceful shutdown.
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { messageType } from '../../src/proto/schema.js';
import { startTestServer } from '../helpers/server.js';

const Req = () => messageType('grpc.health.v1.HealthCheckRequest');
const Res = () => messageType('grpc.health.v1.HealthCheckResponse');
const ser = (m: object) => Buffer.from(Req().encode(m).finish());
const de = (b: Buffer) => Res().toObject(Res().decode(b), { defaults: true }) as { status: number };

function healthCheck(client: grpc.Client, service: string): Promise<{ status: number }> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      '/grpc.health.v1.Health/Check',
      ser,
      de,
      { service },
      { deadline: Date.now() + 2000 },
      (err, res) => (err ? reject(err) : resolve(res!)),
    ),
  );
}

describe.each(['h2c', 'grpc-js'] as const)('health over %s', (transport) => {
  it('Check and Watch report SERVING, then NOT_SERVING on shutdown; unknown services are NOT_FOUND', async () => {
    const srv = await startTestServer({
      registry_file: 'examples/registry.yaml',
      spiffe_trust_domains: 'example.org',
      grpc_transport: transport,
    });
    const client = new grpc.Client(srv.address, grpc.credentials.createInsecure());
    expect((await healthCheck(client, '')).status).toBe(1);
    expect((await healthCheck(client, 'envoy.service.auth.v3.Authorization')).status).toBe(1);
    await expect(healthCheck(client, 'nope')).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
    });

    const seen: number[] = [];
    const stream = client.makeServerStreamRequest('/grpc.health.v1.Health/Watch', ser, de, {
      service: '',
    });
    stream.on('data', (m: { status: number }) => seen.push(m.status));
    stream.on('error', () => undefined);
    while (seen.length === 0) await new Promise((r) => setTimeout(r, 10));
    expect(seen[0]).toBe(1);

    const http = `http://127.0.0.1:${srv.app.httpPort}`;
    expect((await fetch(`${http}/readyz`)).status).toBe(200);
    expect((await fetch(`${http}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${http}/metrics`)).text()).toContain('agent_authz_ready 1');

    const stopping = srv.stop();
    await stopping;
    expect(seen).toContain(2);
    expect(srv.app.isReady()).toBe(false);
    client.close();
  });
});
