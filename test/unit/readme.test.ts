// The README's tables are part of the contract: reason codes, configuration and metrics must match
// the code exactly.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { REASONS } from '../../src/check/reasons.js';
import { CONFIG_KEYS, envName } from '../../src/config/config.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { LIMIT_NAMES } from '../../src/server/h2c/limits.js';

const readme = readFileSync('README.md', 'utf8');

describe('README', () => {
  it('lists every reason code with its HTTP and gRPC status, and nothing else', () => {
    const rows = [...readme.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \| (\d+) [A-Z_]+ \|/gm)].map(
      (m) => [m[1]!, Number(m[2]), Number(m[3])],
    );
    const table = Object.fromEntries(rows.map(([r, h, g]) => [r, { http: h, grpc: g }]));
    const code = Object.fromEntries(
      Object.entries(REASONS).map(([r, v]) => [r, { http: v.http, grpc: v.grpc }]),
    );
    expect(table).toEqual(code);
  });

  it('documents every configuration variable', () => {
    for (const key of CONFIG_KEYS) expect(readme, envName(key)).toContain(`| \`${envName(key)}\``);
  });

  it('documents every agent_authz_* metric', async () => {
    const text = await createMetrics({ defaultMetrics: false }).registry.metrics();
    const names = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!);
    expect(names.length).toBeGreaterThan(10);
    for (const n of names) expect(readme, n).toContain(`\`${n}\``);
  });

  it('docs/transport.md lists every gRPC listener limit the metrics count', () => {
    const doc = readFileSync('docs/transport.md', 'utf8');
    const rows = [...doc.matchAll(/^\| `([a-z_]+)` \| /gm)].map((m) => m[1]!);
    expect(rows.filter((r) => (LIMIT_NAMES as readonly string[]).includes(r)).sort()).toEqual(
      [...LIMIT_NAMES].sort(),
    );
  });

  it('starts with the two quick-start commands that .ci/run relies on', () => {
    expect(readme).toMatch(/```sh\nmake run .*\nmake test .*\n```/);
    expect(readFileSync('.ci/run', 'utf8')).toContain('make test');
  });
});
