// Every metric the Grafana dashboard and the alert rules query must exist in the server's
// registry, so a renamed metric breaks this test instead of silently blanking a panel or alert.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { createMetrics } from '../../src/observability/metrics.js';

const root = new URL('../../', import.meta.url);
const dashboard = JSON.parse(
  readFileSync(new URL('deploy/grafana/agent-authz-dashboard.json', root), 'utf8'),
) as unknown;
const rules = parseYaml(readFileSync(new URL('deploy/prometheus/alerts.yaml', root), 'utf8')) as {
  groups: {
    name: string;
    rules: { alert: string; expr: string; labels?: Record<string, string> }[];
  }[];
};

/** Every PromQL string in the dashboard: panel targets and templating queries. */
function dashboardQueries(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const n of node) dashboardQueries(n, out);
  else if (typeof node === 'object' && node !== null) {
    for (const [k, v] of Object.entries(node)) {
      if ((k === 'expr' || k === 'query' || k === 'definition') && typeof v === 'string')
        out.push(v);
      else dashboardQueries(v, out);
    }
  }
  return out;
}

function metricNames(queries: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (const q of queries)
    for (const m of q.matchAll(/\bagent_authz_[a-zA-Z0-9_]+/g)) names.add(m[0]);
  return names;
}

async function exposed(): Promise<{ names: Set<string>; histograms: Set<string> }> {
  const text = await createMetrics().registry.metrics();
  const names = new Set<string>();
  const histograms = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(m[1]!);
    if (m[2] === 'histogram' || m[2] === 'summary') histograms.add(m[1]!);
  }
  return { names, histograms };
}

function missing(used: Set<string>, have: Awaited<ReturnType<typeof exposed>>): string[] {
  return [...used].filter((n) => {
    if (have.names.has(n)) return false;
    const base = n.replace(/_(bucket|sum|count)$/, '');
    return !(base !== n && have.histograms.has(base));
  });
}

describe('dashboards and alerts', () => {
  it('the dashboard queries only metrics the server exports', async () => {
    const used = metricNames(dashboardQueries(dashboard));
    expect(used.size).toBeGreaterThan(15);
    expect(used).toContain('agent_authz_check_duration_seconds_bucket');
    expect(missing(used, await exposed())).toEqual([]);
  });

  it('the alert rules query only metrics the server exports', async () => {
    const exprs = rules.groups.flatMap((g) => g.rules.map((r) => r.expr));
    const used = metricNames(exprs);
    expect(used).toContain('agent_authz_audit_events_total');
    expect(missing(used, await exposed())).toEqual([]);
  });

  it('every alert has a unique name and a severity', () => {
    const alerts = rules.groups.flatMap((g) => g.rules);
    expect(new Set(alerts.map((a) => a.alert)).size).toBe(alerts.length);
    for (const a of alerts) expect(['warning', 'critical']).toContain(a.labels?.severity);
  });

  it('dashboard panel ids are unique', () => {
    const ids = (dashboard as { panels: { id: number }[] }).panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
