// The handler's fail-closed edge: bugs, decode failures and overload become deny responses.
import { describe, expect, it } from 'vitest';
import type { AuditInput } from '../../../src/audit/types.js';
import { Pipeline } from '../../../src/check/pipeline.js';
import { createLogger } from '../../../src/observability/logger.js';
import { createMetrics } from '../../../src/observability/metrics.js';
import { CheckHandler } from '../../../src/server/check-handler.js';
import type { CredentialVerifier } from '../../../src/credentials/credential.js';
import type { RegistryReader } from '../../../src/registry/registry.js';
import type { RequestFacts } from '../../../src/check/facts.js';
import { Writable } from 'node:stream';
import { messageType } from '../../../src/proto/schema.js';

const decode = (bytes: Buffer): unknown => {
  const T = messageType('envoy.service.auth.v3.CheckResponse');
  return T.toObject(T.decode(bytes), { defaults: true });
};

const registry: RegistryReader = {
  findAgent: async () => undefined,
  getKey: async () => undefined,
  getTenant: async () => undefined,
};
const facts: RequestFacts = {
  sourcePrincipal: 'spiffe://example.org/a/b',
  sourceCertificate: '',
  sourceAddress: '',
  destinationPrincipal: '',
  headers: new Map([['traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01']]),
  method: 'GET',
  path: '/p',
  host: 'h',
  requestId: '1',
  contextExtensions: new Map([['service', 'orders']]),
};

function handler(verifier: CredentialVerifier, mode: 'enforce' | 'dry-run' = 'enforce') {
  const events: AuditInput[] = [];
  const metrics = createMetrics({ defaultMetrics: false });
  const h = new CheckHandler({
    pipeline: new Pipeline({ verifiers: [verifier], registry, requireAgentId: false }),
    mode,
    metrics,
    auditor: { record: (e) => events.push(e), close: async () => undefined },
    logger: createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() })),
    maxInFlight: 10,
    budgetMs: 100,
  });
  return { h, events, metrics };
}

describe('CheckHandler', () => {
  it('answers synchronously when the decision is (no promise per cache-hit check)', async () => {
    const { h, events } = handler({ kind: 'spiffe', verify: () => ({ status: 'absent' }) });
    const res = h.check(facts);
    expect(Buffer.isBuffer(res)).toBe(true);
    expect(events.map((e) => (e as { reason?: string }).reason)).toEqual(['no_credentials']);
    expect(h.active).toBe(0);
    const later = handler({ kind: 'spiffe', verify: async () => ({ status: 'absent' }) });
    const pending = later.h.check(facts);
    expect(pending).toBeInstanceOf(Promise);
    expect(later.h.active).toBe(1);
    expect(Buffer.isBuffer(await pending)).toBe(true);
    expect(later.h.active).toBe(0);
  });

  it('turns a thrown bug into internal_error (503 / UNAVAILABLE), audited and counted', async () => {
    const { h, events, metrics } = handler({
      kind: 'spiffe',
      verify: () => {
        throw new Error('boom');
      },
    });
    const res = decode(await h.check(facts)) as {
      status: { code: number };
      deniedResponse: { status: { code: number } };
    };
    expect(res.status.code).toBe(14);
    expect(res.deniedResponse.status.code).toBe(503);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'decision',
      decision: 'deny',
      reason: 'internal_error',
      trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
      destination: 'orders',
    });
    const m = await metrics.decisions.get();
    expect(m.values.find((v) => v.labels.reason === 'internal_error')?.value).toBe(1);
  });

  it('answers a decode failure with malformed_request', async () => {
    const { h } = handler({ kind: 'spiffe', verify: () => ({ status: 'absent' }) });
    const res = decode(await h.check({ malformed: true, detail: 'x' })) as {
      status: { code: number };
    };
    expect(res.status.code).toBe(16);
  });

  it('dry-run allows but records the would-be deny and passes the reason upstream', async () => {
    const { h, events } = handler(
      { kind: 'spiffe', verify: () => ({ status: 'invalid', reason: 'untrusted_trust_domain' }) },
      'dry-run',
    );
    const res = decode(await h.check(facts)) as {
      status: { code: number };
      okResponse: { headers: { header: { key: string; value: string } }[] };
    };
    expect(res.status.code).toBe(0);
    const hdr = Object.fromEntries(
      res.okResponse.headers.map((x) => [x.header.key, x.header.value]),
    );
    expect(hdr['x-agent-authz-dry-run-reason']).toBe('untrusted_trust_domain');
    expect(hdr['x-agent-id']).toBeUndefined();
    expect(events[0]).toMatchObject({
      decision: 'deny',
      mode: 'dry-run',
      reason: 'untrusted_trust_domain',
    });
  });
});
