// Wire compatibility with Envoy's official protos, both ways: requests encoded with the official
// schema decode correctly with ours, and our responses decode correctly with the official schema.
import { describe, expect, it } from 'vitest';
import { buildResponse } from '../../../src/proto/check-response.js';
import { deny } from '../../../src/check/decision.js';
import { decodeCheckRequest, isDecodeFailure } from '../../../src/proto/decode-check-request.js';
import { messageType } from '../../../src/proto/schema.js';
import type { RequestFacts } from '../../../src/check/facts.js';
import {
  OfficialCheckRequest,
  OfficialCheckResponse,
  encodeOfficialRequest,
  envoyUrlEncodePem,
} from '../../helpers/official-envoy.js';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB+zCCAaGgAwIBAgIU/abc=\n-----END CERTIFICATE-----\n';

function decodeOk(buf: Uint8Array): RequestFacts {
  const f = decodeCheckRequest(buf);
  if (isDecodeFailure(f)) throw new Error(f.detail);
  return f;
}

describe('official CheckRequest → our decoder', () => {
  it('decodes principal, URL-decoded certificate, headers, path, method, host and context extensions', () => {
    const facts = decodeOk(
      encodeOfficialRequest({
        principal: 'spiffe://example.org/agents/alpha',
        certificate: PEM,
        headers: { 'x-agent-id': 'alpha', 'x-forwarded-client-cert': 'Hash=ab;URI=spiffe://x/y' },
        path: '/orders?id=1',
        method: 'POST',
        host: 'orders.svc',
        contextExtensions: { service: 'orders', tier: 'gold' },
        sourceAddress: '10.1.2.3',
      }),
    );
    expect(facts.sourcePrincipal).toBe('spiffe://example.org/agents/alpha');
    expect(facts.sourceCertificate).toBe(PEM);
    expect(facts.sourceAddress).toBe('10.1.2.3');
    expect(facts.destinationPrincipal).toBe('spiffe://example.org/ns/default/sa/orders');
    expect(facts.headers.get('x-agent-id')).toBe('alpha');
    // Headers no decision reads are not kept (the path is in facts.path).
    expect(facts.headers.has(':path')).toBe(false);
    expect(facts.headers.get('x-forwarded-client-cert')).toBe('Hash=ab;URI=spiffe://x/y');
    expect(facts.path).toBe('/orders?id=1');
    expect(facts.method).toBe('POST');
    expect(facts.host).toBe('orders.svc');
    expect(facts.requestId).toBe('3915651613227659083');
    expect(Object.fromEntries(facts.contextExtensions)).toEqual({
      service: 'orders',
      tier: 'gold',
    });
  });

  it('reads header_map (encode_raw_headers) and merges repeated headers with a comma like Envoy', () => {
    const T = OfficialCheckRequest();
    const buf = T.encode(
      T.fromObject({
        attributes: {
          request: {
            http: {
              header_map: {
                headers: [
                  { key: 'X-Agent-Id', raw_value: Buffer.from('a') },
                  { key: 'x-agent-id', raw_value: Buffer.from('b') },
                  { key: 'x-other', value: 'v' },
                  { key: 'X_Agent_Debug', raw_value: Buffer.from('1') },
                  { key: 'x_api_key', value: 'k' },
                ],
              },
            },
          },
        },
      }),
    ).finish();
    const facts = decodeOk(buf);
    expect(facts.headers.get('x-agent-id')).toBe('a,b');
    expect(facts.headers.has('x-other')).toBe(false);
    // Underscore spellings of stripped headers are kept, so an allow can strip them.
    expect(facts.headers.get('x_agent_debug')).toBe('1');
    expect(facts.headers.get('x_api_key')).toBe('k');
    expect(facts.controlCharInHeader).toBe(false);
  });

  it('flags a control character in any header value, kept or not, in both encodings', () => {
    const T = OfficialCheckRequest();
    const viaHeaderMap = (raw: Buffer) =>
      decodeOk(
        T.encode(
          T.fromObject({
            attributes: {
              request: {
                http: { header_map: { headers: [{ key: 'user-agent', raw_value: raw }] } },
              },
            },
          }),
        ).finish(),
      );
    expect(viaHeaderMap(Buffer.from('curl/8\x00')).controlCharInHeader).toBe(true);
    expect(viaHeaderMap(Buffer.from('a\x7fb')).controlCharInHeader).toBe(true);
    expect(viaHeaderMap(Buffer.from('tab\there, ünïcødé')).controlCharInHeader).toBe(false);
    const viaMap = decodeOk(encodeOfficialRequest({ headers: { 'x-trace-note': 'a\nb' } }));
    expect(viaMap.controlCharInHeader).toBe(true);
    expect(viaMap.headers.has('x-trace-note')).toBe(false);
  });

  it('skips fields it does not need (metadata, tls_session, body) without failing', () => {
    const T = OfficialCheckRequest();
    const buf = T.encode(
      T.fromObject({
        attributes: {
          source: { principal: 'spiffe://example.org/a/b', labels: { k: 'v' }, service: 'svc' },
          request: {
            http: {
              body: 'x'.repeat(1000),
              raw_body: Buffer.from([0, 1, 2]),
              size: 1000,
              headers: { a: 'b' },
            },
          },
          metadata_context: { filter_metadata: { ns: { fields: { k: { string_value: 'v' } } } } },
          tls_session: { sni: 'orders.svc' },
          route_metadata_context: {},
        },
      }),
    ).finish();
    const facts = decodeOk(buf);
    expect(facts.sourcePrincipal).toBe('spiffe://example.org/a/b');
    expect(facts.headers.has('a')).toBe(false);
    expect(facts.path).toBe('');
  });

  it('reports truncated or garbage input as a decode failure instead of throwing', () => {
    const good = encodeOfficialRequest({ principal: 'spiffe://example.org/a/b' });
    expect(isDecodeFailure(decodeCheckRequest(good.subarray(0, good.length - 3)))).toBe(true);
    expect(
      isDecodeFailure(decodeCheckRequest(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]))),
    ).toBe(true);
  });

  it('URL-decodes the certificate exactly as Envoy encodes it', () => {
    expect(decodeURIComponent(envoyUrlEncodePem(PEM))).toBe(PEM);
  });
});

describe('our CheckResponse → official decoder', () => {
  const facts = decodeOk(
    encodeOfficialRequest({ headers: { 'x-agent-debug': '1', 'x-api-key': 'secret' } }),
  );
  const ours = messageType('envoy.service.auth.v3.CheckResponse');

  function roundTrip(obj: Record<string, unknown>) {
    const T = OfficialCheckResponse();
    return T.toObject(T.decode(ours.encode(obj).finish()), { defaults: false }) as Record<
      string,
      any
    >;
  }

  it('allow: status 0, headers with append=false and OVERWRITE_IF_EXISTS_OR_ADD, headers_to_remove, dynamic metadata', () => {
    const res = roundTrip(
      buildResponse(
        {
          allowed: true,
          identity: {
            agentId: 'alpha',
            tenant: 'acme',
            role: 'r',
            method: 'spiffe',
            credentialRef: 'x',
          },
        },
        { decisionId: 'd-1', mode: 'enforce', facts },
      ),
    );
    expect(res.status.code ?? 0).toBe(0);
    const headers = res.ok_response.headers as {
      header: { key: string; value: string };
      append: { value?: boolean };
      append_action: number;
    }[];
    const byKey = Object.fromEntries(headers.map((h) => [h.header.key, h]));
    expect(byKey['x-agent-id']!.header.value).toBe('alpha');
    expect(byKey['x-agent-identity-method']!.header.value).toBe('spiffe');
    for (const h of headers) {
      expect(h.append).toBeDefined();
      expect(h.append.value ?? false).toBe(false);
      expect(h.append_action).toBe(2);
    }
    const removed = res.ok_response.headers_to_remove as string[];
    expect(removed).toContain('x-api-key');
    expect(removed).toContain('x-agent-debug');
    for (const h of headers) expect(removed).not.toContain(h.header.key);
    expect(res.dynamic_metadata.fields.agent_id.stringValue).toBe('alpha');
    expect(res.dynamic_metadata.fields.decision_id.stringValue).toBe('d-1');
    expect(res.denied_response).toBeUndefined();
  });

  it('deny: gRPC status, HTTP status, reason header, JSON body and metadata', () => {
    const res = roundTrip(
      buildResponse(deny('agent_not_approved', { agentId: 'gamma' }), {
        decisionId: 'd-2',
        mode: 'enforce',
        facts,
      }),
    );
    expect(res.status.code).toBe(7);
    expect(res.denied_response.status.code).toBe(403);
    const hdr = Object.fromEntries(
      (res.denied_response.headers as any[]).map((h) => [h.header.key, h.header.value]),
    );
    expect(hdr['x-agent-authz-reason']).toBe('agent_not_approved');
    expect(hdr['content-type']).toBe('application/json');
    expect(JSON.parse(res.denied_response.body)).toEqual({
      error: 'the agent is not approved',
      reason: 'agent_not_approved',
      decision_id: 'd-2',
    });
    expect(res.dynamic_metadata.fields.reason.stringValue).toBe('agent_not_approved');
    expect(res.ok_response).toBeUndefined();
  });

  it('unavailable deny carries 503 / UNAVAILABLE', () => {
    const res = roundTrip(
      buildResponse(deny('registry_unavailable'), { decisionId: 'd-3', mode: 'enforce', facts }),
    );
    expect(res.status.code).toBe(14);
    expect(res.denied_response.status.code).toBe(503);
  });
});
