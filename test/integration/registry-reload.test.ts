// The embedded registry file watched by the real server: an edit takes effect on the next Checks,
// a bad file is refused with an error log line while the previous registry stays in force, and a
// fixed file is picked up again. Edits are made both in place and by atomic rename.
import {
  copyFileSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnvoyCheckClient, reasonOf } from '../helpers/official-envoy.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const ALPHA = 'spiffe://example.org/agents/alpha';
const BETA = 'spiffe://example.org/agents/beta';
const GAMMA = 'spiffe://example.org/agents/gamma';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(
  what: string,
  fn: () => Promise<boolean> | boolean,
  ms = 8_000,
): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < ms) {
    if (await fn()) return Date.now() - start;
    await sleep(100);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** Sets `status:` inside one agent's block of the example registry. */
function withStatus(text: string, agentId: string, status: string): string {
  const start = text.indexOf(`- agent_id: ${agentId}\n`);
  const end = text.indexOf('\n  - ', start + 1);
  const block = text.slice(start, end === -1 ? undefined : end);
  expect(block).toMatch(/status: \w+/);
  return (
    text.slice(0, start) +
    block.replace(/status: \w+/, `status: ${status}`) +
    (end === -1 ? '' : text.slice(end))
  );
}

describe('embedded registry reload', () => {
  const dir = mkdtempSync(join(tmpdir(), 'aa-reload-'));
  const file = join(dir, 'registry.yaml');
  const original = readFileSync('examples/registry.yaml', 'utf8');
  let srv: TestServer;
  let client: EnvoyCheckClient;
  const reason = async (principal: string) => reasonOf(await client.check({ principal }));
  const replace = (text: string) => {
    writeFileSync(`${file}.next`, text);
    renameSync(`${file}.next`, file);
  };
  const logged = (msg: string) =>
    srv.logs.filter((l) => l.includes(msg)).map((l) => JSON.parse(l) as Record<string, unknown>);

  beforeAll(async () => {
    copyFileSync('examples/registry.yaml', file);
    srv = await startTestServer({
      registry_file: file,
      registry_watch: true,
      spiffe_trust_domains: 'example.org',
    });
    client = new EnvoyCheckClient(srv.address);
  });

  afterAll(async () => {
    client?.close();
    await srv?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('an edit in place takes effect on the next Checks', async () => {
    expect(await reason(ALPHA)).toBe('allowed');
    writeFileSync(file, withStatus(original, 'alpha', 'suspended'));
    const took = await waitFor(
      'alpha suspended',
      async () => (await reason(ALPHA)) === 'agent_not_approved',
    );
    console.log(`reload seen ${took} ms after the edit`);
    expect(logged('registry file reloaded')).toHaveLength(1);
  });

  it('a bad file is refused with an error line, and the previous registry stays in force', async () => {
    const before = logged('registry file refused').length;
    // gamma approved, but a duplicate agent id makes the whole file invalid: nothing of it applies.
    const bad = withStatus(withStatus(original, 'alpha', 'approved'), 'gamma', 'approved').replace(
      '- agent_id: beta\n',
      '- agent_id: alpha\n',
    );
    replace(bad);
    await waitFor(
      'the refusal to be logged',
      () => logged('registry file refused').length > before,
    );
    const line = logged('registry file refused').at(-1)!;
    expect(line.level).toBe(50); // pino "error"
    expect(JSON.stringify(line.problems)).toContain('duplicate agent_id');
    await sleep(1_500); // more than one watch interval: still nothing applied
    expect(await reason(ALPHA)).toBe('agent_not_approved');
    expect(await reason(GAMMA)).toBe('agent_not_approved');
    expect(await reason(BETA)).toBe('allowed');

    replace('agents: [ { agent_id: broken\n'); // not YAML at all
    await waitFor('the second refusal', () => logged('registry file refused').length > before + 1);
    expect(await reason(ALPHA)).toBe('agent_not_approved');
    expect(await reason(BETA)).toBe('allowed');
  });

  it('the fixed file is loaded again', async () => {
    replace(original);
    await waitFor('alpha allowed again', async () => (await reason(ALPHA)) === 'allowed');
    expect(await reason(GAMMA)).toBe('agent_not_approved');
  });

  it('an external edit back to what an admin write persisted is still a reload', async () => {
    const beta = (await srv.app.store.listAgents()).find((a) => a.agent_id === 'beta')!;
    await srv.app.store.putAgent({ ...beta, status: 'suspended' });
    expect(await reason(BETA)).toBe('agent_not_approved');
    const persisted = readFileSync(file, 'utf8');
    replace(withStatus(persisted, 'beta', 'approved'));
    await waitFor('beta approved by the edit', async () => (await reason(BETA)) === 'allowed');
    replace(persisted);
    await waitFor(
      'beta suspended again',
      async () => (await reason(BETA)) === 'agent_not_approved',
    );
  });
});
