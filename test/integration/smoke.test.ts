import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnvoyCheckClient, reasonOf, setHeaders } from '../helpers/official-envoy.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe('smoke: embedded registry', () => {
  let srv: TestServer;
  let client: EnvoyCheckClient;
  beforeAll(async () => {
    srv = await startTestServer({
      registry_file: 'examples/registry.yaml',
      spiffe_trust_domains: 'example.org',
    });
    client = new EnvoyCheckClient(srv.address);
  });
  afterAll(async () => {
    client.close();
    await srv.stop();
  });
  it('allows a registered SPIFFE ID', async () => {
    const res = await client.check({ principal: 'spiffe://example.org/agents/alpha' });
    expect(reasonOf(res)).toBe('allowed');
    expect(setHeaders(res)['x-agent-id']).toBe('alpha');
  });
});
