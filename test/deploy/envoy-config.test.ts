// envoy/envoy.yaml against Envoy's own API schema, plus the security config-lint on top of it.
import { readFileSync } from 'node:fs';
import type protobuf from 'protobufjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadEnvoySchema, validateEnvoyConfig } from './envoy-schema.js';
import { lintEnvoyConfig } from './envoy-lint.js';

const SOURCE = readFileSync(new URL('../../envoy/envoy.yaml', import.meta.url), 'utf8');
const load = (text = SOURCE): Record<string, unknown> => parse(text) as Record<string, unknown>;

// Reaches into the demo config's first listener; the tests below mutate copies through it.
const hcmOf = (cfg: any): any =>
  cfg.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
const authzOf = (cfg: any): any => hcmOf(cfg).http_filters[0].typed_config;

let root: protobuf.Root;
beforeAll(() => {
  root = loadEnvoySchema();
});

describe('envoy.yaml against the Envoy v3 API schema', () => {
  it('is a valid Bootstrap with no deprecated fields', () => {
    const report = validateEnvoyConfig(root, load());
    expect(report.errors).toEqual([]);
    expect(report.deprecated).toEqual([]);
  });

  it('rejects a misspelt field and names it', () => {
    const broken = SOURCE.replace('include_peer_certificate:', 'include_peer_certficate:');
    expect(broken).not.toBe(SOURCE);
    const { errors } = validateEnvoyConfig(root, load(broken));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/unknown field "include_peer_certficate".*ExtAuthz/);
  });

  it('accepts lowerCamelCase field names, as Envoy does', () => {
    const camel = SOURCE.replace('include_peer_certificate:', 'includePeerCertificate:');
    expect(validateEnvoyConfig(root, load(camel)).errors).toEqual([]);
  });

  it('rejects wrong scalar kinds, unknown enum names and bad durations', () => {
    const cfg = load();
    authzOf(cfg).failure_mode_allow = 'no';
    authzOf(cfg).transport_api_version = 'V4';
    authzOf(cfg).grpc_service.timeout = '200ms';
    hcmOf(cfg).access_log = { not: 'a list' };
    const errors = validateEnvoyConfig(root, cfg).errors.join('\n');
    expect(errors).toMatch(/failure_mode_allow: expected a boolean/);
    expect(errors).toMatch(/transport_api_version: "V4" is not a ApiVersion/);
    expect(errors).toMatch(/timeout: google.protobuf.Duration must be a duration/);
    expect(errors).toMatch(/access_log: repeated field must be a list/);
  });

  it('rejects an @type that is not a loaded message and a typed_config without one', () => {
    const cfg = load();
    authzOf(cfg)['@type'] =
      'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthZ';
    delete hcmOf(cfg).http_filters[1].typed_config['@type'];
    const errors = validateEnvoyConfig(root, cfg).errors.join('\n');
    expect(errors).toMatch(
      /@type envoy\.extensions\.filters\.http\.ext_authz\.v3\.ExtAuthZ is not a loaded/,
    );
    expect(errors).toMatch(/http_filters\[1\]\.typed_config: typed config needs "@type"/);
  });

  it('enforces PGV-required oneofs and min_len', () => {
    const cfg = load();
    delete authzOf(cfg).grpc_service.envoy_grpc;
    const errors = validateEnvoyConfig(root, cfg).errors.join('\n');
    expect(errors).toMatch(/grpc_service: one of envoy_grpc \| google_grpc is required/);
    const empty = load();
    authzOf(empty).grpc_service.envoy_grpc.cluster_name = '';
    expect(validateEnvoyConfig(root, empty).errors.join('\n')).toMatch(
      /cluster_name: must be at least 1/,
    );
  });
});

describe('envoy.yaml config-lint (R-1.1e, R-1.2c)', () => {
  it('passes every rule', () => {
    expect(lintEnvoyConfig(load())).toEqual([]);
  });

  it('has ext_authz first, fail-closed, with the peer certificate, V3 and a timeout', () => {
    const cfg = load();
    expect(hcmOf(cfg).http_filters[0].name).toBe('envoy.filters.http.ext_authz');
    expect(authzOf(cfg).failure_mode_allow ?? false).toBe(false);
    expect(authzOf(cfg).include_peer_certificate).toBe(true);
    expect(authzOf(cfg).transport_api_version).toBe('V3');
    expect(authzOf(cfg).grpc_service.timeout).toBe('0.2s');
    expect(['SANITIZE', 'SANITIZE_SET', undefined]).toContain(
      hcmOf(cfg).forward_client_cert_details,
    );
  });

  it('carries per-route context_extensions and logs ext_authz dynamic metadata', () => {
    const routes = hcmOf(load()).route_config.virtual_hosts[0].routes as Array<{
      typed_per_filter_config: Record<string, { check_settings: { context_extensions: object } }>;
    }>;
    for (const route of routes) {
      const perRoute = route.typed_per_filter_config['envoy.filters.http.ext_authz']!;
      expect(perRoute.check_settings.context_extensions).toHaveProperty('service');
    }
    expect(SOURCE).toContain('%DYNAMIC_METADATA(envoy.filters.http.ext_authz)%');
  });

  it.each([
    [
      'fail-open',
      (c: object) => (authzOf(c).failure_mode_allow = true),
      /failure_mode_allow is true/,
    ],
    [
      'no peer certificate',
      (c: object) => delete authzOf(c).include_peer_certificate,
      /include_peer_certificate/,
    ],
    ['AUTO transport', (c: object) => (authzOf(c).transport_api_version = 'AUTO'), /must be V3/],
    ['no timeout', (c: object) => delete authzOf(c).grpc_service.timeout, /no timeout/],
    ['router first', (c: object) => hcmOf(c).http_filters.reverse(), /first HTTP filter/],
    [
      'forwarded XFCC',
      (c: object) => (hcmOf(c).forward_client_cert_details = 'FORWARD_ONLY'),
      /passes client-supplied XFCC/,
    ],
    [
      'always-forwarded XFCC',
      (c: object) => (hcmOf(c).forward_client_cert_details = 'ALWAYS_FORWARD_ONLY'),
      /passes client-supplied XFCC/,
    ],
    [
      'route bypass',
      (c: object) =>
        (hcmOf(c).route_config.virtual_hosts[0].routes[0].typed_per_filter_config[
          'envoy.filters.http.ext_authz'
        ] = {
          '@type':
            'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute',
          disabled: true,
        }),
      /disables ext_authz/,
    ],
    [
      'filter_enabled without deny_at_disable',
      (c: object) => (authzOf(c).filter_enabled = { default_value: { numerator: 50 } }),
      /deny_at_disable/,
    ],
  ])('flags %s', (_label, mutate, message) => {
    const cfg = load();
    mutate(cfg);
    expect(lintEnvoyConfig(cfg).join('\n')).toMatch(message);
  });
});
