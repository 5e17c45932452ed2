// The Helm chart, checked without a helm binary: values against values.schema.json, every
// `.Values.*` a template uses against values.yaml (and back), the chart README against the values,
// and each template rendered roughly (actions stripped) to catch broken YAML structure.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { CONFIG_KEYS } from '../../src/config/config.js';

const CHART = new URL('../../deploy/helm/agent-authz/', import.meta.url).pathname;
const TEMPLATES = join(CHART, 'templates');
const read = (...p: string[]): string => readFileSync(join(...p), 'utf8');
const values = parse(read(CHART, 'values.yaml')) as Record<string, unknown>;
const schema = JSON.parse(read(CHART, 'values.schema.json')) as object;
const templates = Object.fromEntries(
  readdirSync(TEMPLATES).map((f) => [f, read(TEMPLATES, f)] as const),
);

// Settings the chart derives from its own sections (ports, redis, secrets, volumes); they must
// not also be settable through `config`, or one would silently override the other.
const CHART_MANAGED = [
  'grpc_port',
  'http_port',
  'admin_port',
  'admin_enabled',
  'admin_key_id',
  'admin_key_digest',
  'redis_url',
  'redis_sentinels',
  'redis_sentinel_name',
  'redis_cluster_nodes',
  'redis_password',
  'redis_tls',
  'redis_key_prefix',
  'registry_file',
  'audit_file',
  'audit_writer_id',
  'audit_hmac_key',
];

const isMap = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** Dotted paths of values.yaml leaves: scalars, lists and empty maps. */
export function leafPaths(v: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(v).flatMap(([k, child]) =>
    isMap(child) && Object.keys(child).length > 0
      ? leafPaths(child, `${prefix}${k}.`)
      : [`${prefix}${k}`],
  );
}

/** `.Values.a.b` references in template text, as "a.b". */
export function valueRefs(text: string): string[] {
  return [...text.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)].map((m) => m[1]!.slice(1));
}

/** Paths a reader looks up: leaves, but free-form maps (resources, affinity…) as one unit. */
function documentedUnits(v: Record<string, unknown>, sch: object, prefix = ''): string[] {
  const props = (sch as { properties?: Record<string, object> }).properties ?? {};
  return Object.entries(v).flatMap(([k, child]) => {
    const sub = props[k] as { properties?: object } | undefined;
    return isMap(child) && sub?.properties !== undefined && Object.keys(child).length > 0
      ? documentedUnits(child, sub, `${prefix}${k}.`)
      : [`${prefix}${k}`];
  });
}

export function missingRefs(refs: string[], v: Record<string, unknown>): string[] {
  return refs.filter((ref) => {
    let node: unknown = v;
    for (const part of ref.split('.')) {
      if (!isMap(node) || !(part in node)) return true;
      node = node[part];
    }
    return false;
  });
}

export function unusedLeaves(refs: string[], v: Record<string, unknown>): string[] {
  // A reference to a map (toYaml .Values.config) uses every leaf below it.
  return leafPaths(v).filter((leaf) => !refs.some((r) => leaf === r || leaf.startsWith(`${r}.`)));
}

/** Template with its actions stripped: action-only lines dropped, inline actions replaced by X. */
function roughRender(text: string): string {
  return text
    .replace(/\{\{-?\s*\/\*[\s\S]*?\*\/\s*-?\}\}/g, '')
    .split('\n')
    .filter((line) => line.replace(/\{\{[^}]*\}\}/g, '').trim() !== '' || line.trim() === '')
    .map((line) => line.replace(/\{\{[^}]*\}\}/g, 'X'))
    .join('\n');
}

const allRefs = Object.values(templates).flatMap(valueRefs);

describe('values.yaml and values.schema.json', () => {
  const ajv = new Ajv({ allErrors: true, allowUnionTypes: true });
  const validate = ajv.compile(schema);

  it('values.yaml is valid', () => {
    expect(validate(values), JSON.stringify(validate.errors)).toBe(true);
  });

  it.each([
    ['a string for an integer', { replicaCount: 'three' }, '/replicaCount'],
    ['an unknown top-level key', { replicas: 3 }, ''],
    [
      'a malformed duration',
      { config: { ...(values.config as object), cache_ttl: '30 sec' } },
      '/config/cache_ttl',
    ],
    ['a chart-managed setting in config', { config: { grpc_port: 9999 } }, '/config'],
    ['an out-of-range port', { ports: { grpc: 70000, http: 8080, admin: 8181 } }, '/ports/grpc'],
    ['an unknown mode', { config: { mode: 'permissive' } }, '/config/mode'],
    [
      'a JWT issuer with both key sources',
      {
        config: {
          jwt_issuers: [
            { issuer: 'i', audiences: ['a'], jwks_url: 'https://x', discovery_url: 'https://y' },
          ],
        },
      },
      '/config/jwt_issuers/0',
    ],
  ])('rejects %s', (_label, patch, where) => {
    expect(validate({ ...values, ...patch })).toBe(false);
    expect(validate.errors!.map((e) => e.instancePath)).toContain(where);
  });

  it('offers under `config` exactly the agent-authz settings the chart does not derive', () => {
    const configSchema = (schema as { properties: { config: { properties: object } } }).properties
      .config;
    const offered = Object.keys(configSchema.properties);
    expect([...offered, ...CHART_MANAGED].sort()).toEqual([...CONFIG_KEYS].sort());
  });
});

describe('.Values references', () => {
  it('every .Values path a template uses exists in values.yaml', () => {
    expect(allRefs.length).toBeGreaterThan(50);
    expect(missingRefs(allRefs, values)).toEqual([]);
  });

  it('every leaf of values.yaml is used by some template', () => {
    expect(unusedLeaves(allRefs, values)).toEqual([]);
  });

  it('the checks can fail', () => {
    expect(missingRefs(['image.tga', 'ports.grpc'], values)).toEqual(['image.tga']);
    expect(unusedLeaves(['image'], { image: { tag: '' }, orphan: 1 })).toEqual(['orphan']);
  });

  it('the chart README documents every value', () => {
    const readme = read(CHART, 'README.md');
    const undocumented = documentedUnits(values, schema).filter(
      (p) => !readme.includes(`\`${p}\``),
    );
    expect(undocumented).toEqual([]);
  });
});

describe('templates', () => {
  const defined = new Set(
    [...templates['_helpers.tpl']!.matchAll(/define "([^"]+)"/g)].map((m) => m[1]),
  );

  it.each(Object.keys(templates))('%s has balanced blocks and known includes', (file) => {
    const text = templates[file]!;
    const opens = text.match(/\{\{-?\s*(if|range|with|define)\b/g)?.length ?? 0;
    const ends = text.match(/\{\{-?\s*end\s*-?\}\}/g)?.length ?? 0;
    expect(ends).toBe(opens);
    for (const [, name] of text.matchAll(/include "([^"]+)"/g)) expect(defined).toContain(name);
  });

  it.each(Object.keys(templates).filter((f) => f.endsWith('.yaml')))(
    '%s renders to Kubernetes objects',
    (file) => {
      const docs = parseAllDocuments(roughRender(templates[file]!), { uniqueKeys: false });
      for (const doc of docs) {
        expect(doc.errors.map((e) => e.message)).toEqual([]);
        const obj = doc.toJS() as Record<string, unknown> | null;
        expect(obj).toHaveProperty('apiVersion');
        expect(obj).toHaveProperty('kind');
        expect(obj).toHaveProperty('metadata.name');
      }
    },
  );

  it('the Deployment is hardened and probed over gRPC health', () => {
    const dep = parse(roughRender(templates['deployment.yaml']!), { uniqueKeys: false });
    const pod = dep.spec.template.spec;
    const [container] = pod.containers;
    expect(pod.enableServiceLinks).toBe(false);
    expect(pod.automountServiceAccountToken).toBe(false);
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
      expect(container[probe]).toHaveProperty('grpc.port');
    }
    expect(container.volumeMounts.map((m: { mountPath: string }) => m.mountPath)).toContain('/tmp');
    expect(pod.topologySpreadConstraints).toHaveLength(2);
    expect(values.securityContext).toMatchObject({ readOnlyRootFilesystem: true });
    expect(values.podSecurityContext).toMatchObject({ runAsNonRoot: true });
    const env = container.env.map((e: { name: string }) => e.name) as string[];
    for (const name of env) {
      if (name === 'REDIS_URL' || name === 'AGENT_AUTHZ_CONFIG') continue;
      expect(CONFIG_KEYS).toContain(name.replace(/^AGENT_AUTHZ_/, '').toLowerCase());
    }
  });

  it('Chart.yaml is a v2 chart named agent-authz', () => {
    expect(parse(read(CHART, 'Chart.yaml'))).toMatchObject({
      apiVersion: 'v2',
      name: 'agent-authz',
    });
  });
});
