// The hand-written CheckResponse encoder must produce exactly protobufjs's bytes for every response
// proto/check-response.ts can build, and those bytes must decode with Envoy's official schema.
import { describe, expect, it } from 'vitest';
import { buildResponse } from '../../../src/proto/check-response.js';
import { deny, type Decision } from '../../../src/check/decision.js';
import { ALL_REASONS, type DenyReason } from '../../../src/check/reasons.js';
import { decodeCheckRequest, isDecodeFailure } from '../../../src/proto/decode-check-request.js';
import { encodeCheckResponse } from '../../../src/proto/encode-check-response.js';
import { messageType } from '../../../src/proto/schema.js';
import { OfficialCheckResponse, encodeOfficialRequest } from '../../helpers/official-envoy.js';

const ours = messageType('envoy.service.auth.v3.CheckResponse');
const request = decodeCheckRequest(
  encodeOfficialRequest({
    headers: { 'x-agent-debug': '1', 'x-api-key': 'secret', x_agent_role: 'r', 'x-agent-id': 'a' },
  }),
);
if (isDecodeFailure(request)) throw new Error(request.detail);

const identities = [
  {
    agentId: 'alpha',
    tenant: 'acme',
    role: 'reader',
    method: 'spiffe',
    credentialRef: 'spiffe://x/y',
  },
  // multi-byte UTF-8 and a long value (two-byte length varints)
  {
    agentId: 'ågent-ü-✓',
    tenant: 't'.repeat(300),
    role: 'r',
    method: 'key_bound',
    credentialRef: 'k',
  },
] as const;

function decisions(): Decision[] {
  const out: Decision[] = identities.map((identity) => ({ allowed: true, identity }));
  for (const reason of ALL_REASONS) {
    if (reason === 'allowed') continue;
    out.push(
      deny(reason as DenyReason),
      deny(reason as DenyReason, { agentId: 'gamma', tenant: 'acme', method: 'pki' }),
    );
  }
  return out;
}

describe('encodeCheckResponse', () => {
  for (const mode of ['enforce', 'dry-run'] as const) {
    for (const facts of [request, undefined]) {
      it(`matches protobufjs byte for byte (${mode}, ${facts === undefined ? 'no facts' : 'with facts'})`, () => {
        for (const d of decisions()) {
          const obj = buildResponse(d, {
            decisionId: '6f1c2d3e-0000-4000-8000-00000000abcd',
            mode,
            facts,
          });
          const mine = encodeCheckResponse(obj);
          expect(mine.equals(Buffer.from(ours.encode(obj).finish()))).toBe(true);
          const T = OfficialCheckResponse();
          const official = T.toObject(T.decode(mine), { defaults: false }) as Record<string, any>;
          expect(official.status?.code ?? 0).toBe(
            d.allowed || mode === 'dry-run' ? 0 : (obj.status as { code: number }).code,
          );
          expect(official.dynamic_metadata.fields.decision_id.stringValue).toBe(
            '6f1c2d3e-0000-4000-8000-00000000abcd',
          );
        }
      });
    }
  }

  it('decodes with the official schema to the same allow response', () => {
    const obj = buildResponse(
      { allowed: true, identity: identities[1] },
      { decisionId: 'd', mode: 'enforce', facts: request },
    );
    const T = OfficialCheckResponse();
    const official = T.toObject(T.decode(encodeCheckResponse(obj)), { defaults: false }) as Record<
      string,
      any
    >;
    const set = Object.fromEntries(
      official.ok_response.headers.map((h: any) => [h.header.key, h.header.value]),
    );
    expect(set['x-agent-id']).toBe('ågent-ü-✓');
    expect(set['x-agent-tenant']).toBe('t'.repeat(300));
    expect(official.ok_response.headers_to_remove).toEqual(
      expect.arrayContaining(['x-api-key', 'x-agent-debug', 'x_agent_role']),
    );
    for (const h of official.ok_response.headers) expect(h.append_action).toBe(2);
  });

  it('leaves out proto3 defaults exactly where protobufjs does', () => {
    const cases = [
      { status: { code: 0, message: '' } },
      {
        okResponse: {
          headers: [{ header: { key: '', value: '' }, append: { value: true }, appendAction: 0 }],
          headersToRemove: [''],
        },
      },
      { dynamicMetadata: { fields: { a: { stringValue: '' } } } },
      { deniedResponse: { status: { code: 0 }, body: '' } },
    ];
    for (const obj of cases)
      expect(encodeCheckResponse(obj).equals(Buffer.from(ours.encode(obj).finish()))).toBe(true);
  });

  it('falls back to protobufjs for a shape it does not know', () => {
    const obj = { status: { code: 0 }, errorResponse: { status: { code: 500 } } };
    expect(encodeCheckResponse(obj).equals(Buffer.from(ours.encode(obj).finish()))).toBe(true);
  });
});
