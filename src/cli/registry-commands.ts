// `agent-authz registry import|export`: the same store code path the admin API uses, against
// Redis (REDIS_URL) or the embedded file. (`keys`, `agents`, `tenants` live in admin-commands.ts.)
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/config.js';
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
