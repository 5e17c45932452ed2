import { describe, expect, it } from 'vitest';
import { beforeRead, createMetrics, hotCounter } from '../../src/observability/metrics.js';

describe('hotCounter', () => {
  it('shows its counts whenever the counter is read, once, under its own labels', async () => {
    const m = createMetrics({ defaultMetrics: false });
    const hit = hotCounter(m.cacheRequests, { result: 'hit' });
    const miss = hotCounter(m.cacheRequests, { result: 'miss' });
    for (let i = 0; i < 5; i++) hit.inc();
    miss.inc();
    m.cacheRequests.inc({ result: 'stale' }); // the ordinary API still works beside it
    const text = await m.registry.metrics();
    expect(text).toContain('agent_authz_registry_cache_requests_total{result="hit"} 5');
    expect(text).toContain('agent_authz_registry_cache_requests_total{result="miss"} 1');
    expect(text).toContain('agent_authz_registry_cache_requests_total{result="stale"} 1');
    hit.inc();
    const again = await m.cacheRequests.get();
    const byResult = Object.fromEntries(again.values.map((v) => [v.labels.result, v.value]));
    expect(byResult).toEqual({ hit: 6, miss: 1, stale: 1 });
  });

  it('beforeRead runs every hook registered on a metric at each read', async () => {
    const m = createMetrics({ defaultMetrics: false });
    let depth = 3;
    beforeRead(m.auditQueueDepth, () => m.auditQueueDepth.set(depth));
    expect(await m.registry.metrics()).toContain('agent_authz_audit_queue_depth 3');
    depth = 7;
    expect(await m.registry.metrics()).toContain('agent_authz_audit_queue_depth 7');
  });
});
