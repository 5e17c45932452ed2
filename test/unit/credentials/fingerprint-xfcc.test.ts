import { describe, expect, it } from 'vitest';
import { digestEquals, normalizeFingerprint } from '../../../src/credentials/fingerprint.js';
import { parseXfcc, rightmostElement } from '../../../src/credentials/xfcc.js';

const hex = '866afa87' + 'ab'.repeat(28);

describe('normalizeFingerprint', () => {
  const colon = hex.match(/../g)!.join(':');
  it.each([hex, hex.toUpperCase(), colon, colon.toUpperCase(), `  ${hex} `])('accepts %s', (v) => {
    expect(normalizeFingerprint(v)).toBe(hex);
  });
  it.each([
    ['sha1', 'ab'.repeat(20)],
    ['63 chars', hex.slice(1)],
    ['65 chars', hex + 'a'],
    ['non-hex', hex.slice(0, 63) + 'g'],
    ['bad colon grouping', hex.slice(0, 3) + ':' + hex.slice(3)],
    ['empty', ''],
  ])('rejects %s', (_name, v) => {
    expect(normalizeFingerprint(v)).toBeUndefined();
  });
  it('digestEquals is exact and length-safe', () => {
    expect(digestEquals(hex, hex)).toBe(true);
    expect(digestEquals(hex, hex.slice(0, 63) + '0')).toBe(false);
    expect(digestEquals(hex, hex.slice(1))).toBe(false);
  });
});

describe('XFCC', () => {
  it('parses Istio sidecar element with quoted empty subject', () => {
    const v =
      'By=spiffe://cluster.local/ns/foo/sa/httpbin;Hash=abc123;Subject="";URI=spiffe://cluster.local/ns/foo/sa/sleep';
    const [el] = parseXfcc(v)!;
    expect(el!.get('by')).toEqual(['spiffe://cluster.local/ns/foo/sa/httpbin']);
    expect(el!.get('hash')).toEqual(['abc123']);
    expect(el!.get('subject')).toEqual(['']);
    expect(el!.get('uri')).toEqual(['spiffe://cluster.local/ns/foo/sa/sleep']);
  });

  it('handles quoted values containing separators and escaped quotes', () => {
    const v = 'Hash=aa;Subject="CN=a,OU=b;c \\"q\\"";URI=spiffe://td/x,Hash=bb;URI=spiffe://td/y';
    const els = parseXfcc(v)!;
    expect(els).toHaveLength(2);
    expect(els[0]!.get('subject')).toEqual(['CN=a,OU=b;c "q"']);
    expect(els[1]!.get('hash')).toEqual(['bb']);
  });

  it('uses the right-most element (the one the local proxy appended)', () => {
    const v =
      'Hash=forged;URI=spiffe://example.org/admin,By=spiffe://example.org/proxy;Hash=real;URI=spiffe://example.org/agents/alpha';
    const el = rightmostElement(v)!;
    expect(el.get('hash')).toEqual(['real']);
    expect(el.get('uri')).toEqual(['spiffe://example.org/agents/alpha']);
  });

  it('collects repeated keys (several URI SANs)', () => {
    const el = rightmostElement('Hash=a;URI=spiffe://td/x;URI=spiffe://td/y')!;
    expect(el.get('uri')).toEqual(['spiffe://td/x', 'spiffe://td/y']);
  });

  it.each(['Hash', 'Hash=a;"x"=b', 'Subject="unterminated', 'Hash=a;;'])(
    'rejects malformed %s',
    (v) => {
      expect(parseXfcc(v)).toBeUndefined();
    },
  );
});
