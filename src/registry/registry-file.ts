// The registry YAML file format (tenants, agents, keys), shared by the embedded store,
// `registry import` and `registry export`; validated as a whole before anything is used.
import { readFileSync } from 'node:fs';
import { parse as parseYaml, stringify } from 'yaml';
import { describeIssues, registryFileSchema, type Agent, type RegistryData } from './records.js';
import { agentLookupKeys } from './registry.js';

export class RegistryFileError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid registry:\n  - ${problems.join('\n  - ')}`);
  }
}

export function parseRegistry(text: string, source = 'registry'): RegistryData {
  let raw: unknown;
  try {
    raw = parseYaml(text) ?? {};
  } catch (err) {
    throw new RegistryFileError([`${source}: ${err instanceof Error ? err.message : String(err)}`]);
  }
  const result = registryFileSchema.safeParse(raw);
  if (!result.success) throw new RegistryFileError(describeIssues(result.error, `${source}: `));
  const problems = crossCheck(result.data);
  if (problems.length > 0) throw new RegistryFileError(problems.map((p) => `${source}: ${p}`));
  return result.data;
}

export function readRegistryFile(path: string): RegistryData {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new RegistryFileError([`${path}: ${err instanceof Error ? err.message : String(err)}`]);
  }
  return parseRegistry(text, path);
}

export function formatRegistry(data: RegistryData): string {
  return stringify(data, { lineWidth: 0 });
}

/** Uniqueness of ids and of every lookup index across the whole file. */
export function crossCheck(data: RegistryData): string[] {
  const problems: string[] = [];
  const seen = (list: { id: string; where: string }[], what: string) => {
    const owners = new Map<string, string>();
    for (const { id, where } of list) {
      const prev = owners.get(id);
      if (prev !== undefined) problems.push(`${where}: duplicate ${what} (also ${prev})`);
      else owners.set(id, where);
    }
  };
  seen(
    data.tenants.map((t, i) => ({ id: t.tenant_id, where: `tenants[${i}]` })),
    'tenant_id',
  );
  seen(
    data.agents.map((a, i) => ({ id: a.agent_id, where: `agents[${i}]` })),
    'agent_id',
  );
  seen(
    data.keys.map((k, i) => ({ id: k.key_id, where: `keys[${i}]` })),
    'key_id',
  );
  seen(
    data.keys.map((k, i) => ({ id: k.digest, where: `keys[${i}]` })),
    'digest',
  );
  const indexOwners = new Map<string, string>();
  data.agents.forEach((a: Agent, i) => {
    for (const k of agentLookupKeys(a).slice(1)) {
      const prev = indexOwners.get(k);
      if (prev !== undefined && prev !== a.agent_id)
        problems.push(`agents[${i}]: ${k.split(':')[0]} is already used by agent ${prev}`);
      indexOwners.set(k, a.agent_id);
    }
  });
  return problems;
}
