// deploy/istio: the provider the AuthorizationPolicy names must exist and fail closed, mTLS must be
// STRICT, and the EnvoyFilter's patch must be a valid ExtAuthz fragment by Envoy's own schema.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { loadEnvoySchema, validateEnvoyConfig } from './envoy-schema.js';

const DIR = new URL('../../deploy/istio/', import.meta.url).pathname;
const docs: any[] = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) => parseAllDocuments(readFileSync(join(DIR, f), 'utf8')).map((d) => d.toJS()));
const ofKind = (kind: string): any[] => docs.filter((d) => d?.kind === kind);
const providers: any[] = ofKind('IstioOperator').flatMap(
  (d) => d.spec.meshConfig.extensionProviders,
);

describe('Istio wiring', () => {
  it('every CUSTOM AuthorizationPolicy names a fail-closed provider with a short timeout', () => {
    const custom = ofKind('AuthorizationPolicy').filter((p) => p.spec.action === 'CUSTOM');
    expect(custom.length).toBeGreaterThan(0);
    for (const policy of custom) {
      const provider = providers.find((p) => p.name === policy.spec.provider.name);
      expect(provider, `provider ${policy.spec.provider.name}`).toBeDefined();
      const grpc = provider.envoyExtAuthzGrpc;
      expect(grpc.failOpen).toBe(false);
      expect(grpc.port).toBe(9191);
      expect(grpc.timeout).toMatch(/^\d+(\.\d+)?s$/);
      expect(Number.parseFloat(grpc.timeout)).toBeLessThanOrEqual(1);
      expect(grpc.service).toMatch(/^agent-authz\.[a-z0-9-]+\.svc\.cluster\.local$/);
      // CUSTOM only sends requests that match a rule; without rules nothing would be checked.
      expect(policy.spec.rules?.length).toBeGreaterThan(0);
    }
  });

  it('PeerAuthentication is STRICT, with plaintext allowed on the metrics port only', () => {
    const policies = ofKind('PeerAuthentication');
    expect(policies.length).toBeGreaterThan(0);
    for (const p of policies) {
      expect(p.spec.mtls.mode).toBe('STRICT');
      expect(Object.keys(p.spec.portLevelMtls ?? {}).filter((port) => port !== '8080')).toEqual([]);
    }
  });

  it('the EnvoyFilter patches a valid ExtAuthz with include_peer_certificate', () => {
    const root = loadEnvoySchema();
    const filters = ofKind('EnvoyFilter');
    expect(filters.length).toBeGreaterThan(0);
    for (const f of filters) {
      for (const patch of f.spec.configPatches) {
        expect(patch.match.listener.filterChain.filter.subFilter.name).toBe(
          'envoy.filters.http.ext_authz',
        );
        const typed = patch.patch.value.typed_config;
        expect(typed.include_peer_certificate).toBe(true);
        expect(validateEnvoyConfig(root, typed, 'google.protobuf.Any').errors).toEqual([]);
      }
    }
  });

  it('the XFCC values override is valid for the chart and turns trust_xfcc on', () => {
    const chart = new URL('../../deploy/helm/agent-authz/', import.meta.url).pathname;
    const base = parse(readFileSync(join(chart, 'values.yaml'), 'utf8'));
    const overlay = parse(readFileSync(join(DIR, 'xfcc-values.yaml'), 'utf8'));
    const merged = { ...base, config: { ...base.config, ...overlay.config } };
    const validate = new Ajv({ allowUnionTypes: true }).compile(
      JSON.parse(readFileSync(join(chart, 'values.schema.json'), 'utf8')),
    );
    expect(validate(merged), JSON.stringify(validate.errors)).toBe(true);
    expect(merged.config.trust_xfcc).toBe(true);
  });
});
