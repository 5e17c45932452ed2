// Every YAML file under deploy/ and envoy/ must parse (duplicate keys included). Helm templates
// are Go templates, not YAML, and are checked in helm-chart.test.ts instead.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

const REPO = new URL('../../', import.meta.url).pathname;
const TEMPLATES = join('deploy', 'helm', 'agent-authz', 'templates');

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      return relative(REPO, path) === TEMPLATES || name === 'certs' ? [] : yamlFiles(path);
    }
    return /\.ya?ml$/.test(name) ? [relative(REPO, path)] : [];
  });
}

const files = ['deploy', 'envoy'].flatMap((d) => yamlFiles(join(REPO, d)));

describe('YAML under deploy/ and envoy/', () => {
  it('finds the files it is meant to check', () => {
    expect(files).toEqual(
      expect.arrayContaining([
        'envoy/envoy.yaml',
        'deploy/docker-compose.yaml',
        'deploy/helm/agent-authz/values.yaml',
        'deploy/helm/agent-authz/Chart.yaml',
        'deploy/istio/mesh-config.yaml',
      ]),
    );
  });

  it.each(files)('%s parses', (file) => {
    const docs = parseAllDocuments(readFileSync(join(REPO, file), 'utf8'));
    expect(docs.length).toBeGreaterThan(0);
    for (const doc of docs) {
      expect(doc.errors.map((e) => e.message)).toEqual([]);
      expect(doc.warnings.map((e) => e.message)).toEqual([]);
    }
  });

  it('a broken document is reported', () => {
    const [doc] = parseAllDocuments('a: 1\na: 2\n');
    expect(doc!.errors.length).toBeGreaterThan(0);
  });
});
