import { describe, expect, it } from 'vitest';
import { headersAreClean, keepsHeader } from '../../../src/check/header-rules.js';
import { makeFacts } from '../../helpers/facts.js';

const facts = (headers: Record<string, string>) => makeFacts({ headers });

describe('headersAreClean', () => {
  it.each([
    [{ 'x-agent-id': 'a,b' }, 'repeated x-agent-id'],
    [{ 'x-api-key': 'k1,k2' }, 'repeated x-api-key'],
    [{ authorization: 'Bearer a.b.c,Bearer d.e.f' }, 'repeated bearer token'],
    [{ 'x-note': 'a\nb' }, 'newline in any header'],
    [{ 'x-note': 'a\u007fb' }, 'DEL in any header'],
    [{ 'x-agent-role': 'r\ufffd' }, 'replacement character in an identity header'],
    [{ 'x-agent-id': '  ' }, 'blank identity header'],
  ] as [Record<string, string>, string][])('rejects %o (%s)', (h) => {
    expect(headersAreClean(facts(h))).toBe(false);
  });

  it.each([
    [
      {
        authorization:
          'AWS4-HMAC-SHA256 Credential=AKID/20261123/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=abc',
      },
    ],
    [{ authorization: 'Digest username="u", realm="r", nonce="n"' }],
    [{ accept: 'text/html, application/json', 'x-note': 'tab\there' }],
    [{ 'x-agent-id': 'alpha', authorization: 'Bearer a.b.c' }],
  ] as [Record<string, string>][])('accepts %o', (h) => {
    expect(headersAreClean(facts(h))).toBe(true);
  });

  it('rejects a request whose decoder saw a control character in a header it did not keep', () => {
    expect(headersAreClean(makeFacts({ controlCharInHeader: true }))).toBe(false);
    expect(headersAreClean(makeFacts({ controlCharInHeader: false }))).toBe(true);
  });
});

describe('keepsHeader', () => {
  it.each([
    'x-agent-id',
    'x-agent-role',
    'x-agent-token',
    'x-agent-anything',
    'x_agent_debug',
    'x-api-key',
    'x_api_key',
    'authorization',
    'x-forwarded-client-cert',
    'x-spiffe-id',
    'x-client-cert-san',
    'x_client_cert_fingerprint',
    'client-cert',
    'client_cert_chain',
    'traceparent',
  ])('keeps %s (read by a decision or stripped by an allow)', (name) => {
    expect(keepsHeader(name)).toBe(true);
  });

  it.each(['user-agent', ':path', ':authority', 'x-request-id', 'x-b3-traceid', 'x-agentless'])(
    'does not keep %s',
    (name) => {
      expect(keepsHeader(name)).toBe(false);
    },
  );
});
