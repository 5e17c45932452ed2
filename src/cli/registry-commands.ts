// `agent-authz registry import|export` and `keys create|revoke`: the same store code path the
// admin API uses, against Redis (REDIS_URL) or the embedded file.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/config.js';
import { mintApiKey } from '../credentials/api-key.js';
import { keySchema, KEY_SCOPES } from '../registry/records.js';
import { formatRegistry, readRegistryFile } from '../registry/registry-file.js';
import type { RegistryStore } from '../registry/registry.js';
import { buildStore } from '../server/app.js';

async function withStore<T>(fn: (store: RegistryStore) => Promise<T>): Promise<T> {
  const config = loadConfig({ overrides: { registry_watch: false } });
  const store = buildStore(config);
  try {
    if ('waitReady' in store)
      await (store as { waitReady(ms: number): Promise<boolean> }).waitReady(3000);
    return await fn(store);
  } finally {
    await store.close();
  }
}

export async function registryCommand(argv: string[], out: NodeJS.WritableStream): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      replace: { type: 'boolean', default: false },
      output: { type: 'string', short: 'o' },
    },
  });
  if (sub === 'import') {
    const file = positionals[0];
    if (file === undefined) throw new Error('usage: agent-authz registry import FILE [--replace]');
    const data = readRegistryFile(file);
    await withStore((s) => s.importData(data, { replace: values.replace! }));
    out.write(
      `imported ${data.tenants.length} tenants, ${data.agents.length} agents, ${data.keys.length} keys\n`,
    );
    return 0;
  }
  if (sub === 'export') {
    const text = await withStore(async (s) =>
      formatRegistry({
        tenants: await s.listTenants(),
        agents: await s.listAgents(),
        keys: await s.listKeys(),
      }),
    );
    if (values.output !== undefined) writeFileSync(values.output, text, { mode: 0o600 });
    else out.write(text);
    return 0;
  }
  throw new Error('usage: agent-authz registry import FILE [--replace] | export [-o FILE]');
}

export async function keysCommand(argv: string[], out: NodeJS.WritableStream): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      tenant: { type: 'string' },
      scope: { type: 'string', default: 'evaluate' },
      label: { type: 'string' },
      'bound-agent': { type: 'string' },
      role: { type: 'string', multiple: true },
      'expires-at': { type: 'string' },
      'key-id': { type: 'string' },
    },
  });
  if (sub === 'create') {
    if (values.tenant === undefined) throw new Error('keys create needs --tenant');
    if (!(KEY_SCOPES as readonly string[]).includes(values.scope!))
      throw new Error(`--scope must be one of ${KEY_SCOPES.join(', ')}`);
    const minted = mintApiKey(values['key-id']);
    const now = new Date().toISOString();
    const record = keySchema.parse({
      key_id: minted.keyId,
      tenant: values.tenant,
      scope: values.scope,
      digest: minted.digest,
      status: 'active',
      created_at: now,
      updated_at: now,
      ...(values.label !== undefined ? { label: values.label } : {}),
      ...(values['bound-agent'] !== undefined ? { bound_agent_id: values['bound-agent'] } : {}),
      ...(values.role !== undefined ? { permitted_roles: values.role } : {}),
      ...(values['expires-at'] !== undefined ? { expires_at: values['expires-at'] } : {}),
    });
    await withStore((s) => s.putKey(record));
    out.write(
      `key_id: ${minted.keyId}\nsecret: ${minted.secret}\n(the secret is shown once; only its SHA-256 digest is stored)\n`,
    );
    return 0;
  }
  if (sub === 'revoke') {
    const keyId = positionals[0];
    if (keyId === undefined) throw new Error('usage: agent-authz keys revoke KEY_ID');
    const done = await withStore(async (s) => {
      const k = await s.getKey(keyId);
      if (k === undefined) return false;
      await s.putKey({ ...k, status: 'revoked', updated_at: new Date().toISOString() });
      return true;
    });
    out.write(done ? `revoked ${keyId}\n` : `no such key: ${keyId}\n`);
    return done ? 0 : 1;
  }
  throw new Error(
    'usage: agent-authz keys create --tenant T [--scope evaluate] ... | revoke KEY_ID',
  );
}
