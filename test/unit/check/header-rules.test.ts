import { describe, expect, it } from 'vitest';
import { headersAreClean } from '../../../src/check/header-rules.js';
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
});
