import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseSpiffeId } from '../../../src/credentials/spiffe-id.js';

const td = 'example.org';

describe('parseSpiffeId (SPIFFE-ID.md rules)', () => {
  it.each([
    ['spiffe://example.org/ns/a/sa/b', 'example.org', '/ns/a/sa/b'],
    ['spiffe://example.org/agents/alpha', 'example.org', '/agents/alpha'],
    ['spiffe://my-td_1.example/A.b-c_d', 'my-td_1.example', '/A.b-c_d'],
    ['spiffe://192.168.0.1/x', '192.168.0.1', '/x'],
  ])('accepts %s', (id, trustDomain, path) => {
    expect(parseSpiffeId(id)).toEqual({ ok: true, trustDomain, path });
  });

  it.each([
    ['spiffe://example.org', 'workload ID without a path'],
    ['spiffe://example.org/', 'trailing slash / root'],
    ['spiffe://Example.org/x', 'uppercase trust domain'],
    ['SPIFFE://example.org/x', 'uppercase scheme (we do not normalise case)'],
    ['spiffe://example.org/x/', 'trailing slash'],
    ['spiffe://example.org//x', 'empty segment'],
    ['spiffe://example.org/./x', 'dot segment'],
    ['spiffe://example.org/../x', 'dot-dot segment'],
    ['spiffe://example.org/%2e%2e/x', 'percent-encoded dots'],
    ['spiffe://example.org/a%2Fb', 'percent-encoded slash'],
    ['spiffe://example.org:443/x', 'port'],
    ['spiffe://u@example.org/x', 'userinfo'],
    ['spiffe://example.org/x?y', 'query'],
    ['spiffe://example.org/x#y', 'fragment'],
    ['spiffe://[::1]/x', 'IPv6 trust domain'],
    ['spiffe:///x', 'empty trust domain'],
    ['spiffe://example.org/x, URI:spiffe://trusted.org/admin', 'SAN injection'],
    ['https://example.org/x', 'other scheme'],
    ['orders.example.org', 'DNS SAN fallback'],
    ['CN=agent,O=acme', 'Subject fallback'],
    ['spiffe://example.org/caf\u00e9', 'non-ASCII path'],
    ['', 'empty'],
  ])('rejects %s (%s)', (id) => {
    expect(parseSpiffeId(id).ok).toBe(false);
  });

  it('accepts exactly 2048 bytes and rejects 2049', () => {
    const base = `spiffe://${td}/`;
    const ok = base + 'a'.repeat(2048 - base.length);
    expect(Buffer.byteLength(ok)).toBe(2048);
    expect(parseSpiffeId(ok).ok).toBe(true);
    expect(parseSpiffeId(ok + 'a').ok).toBe(false);
  });

  it('rejects a trust domain longer than 255 bytes', () => {
    expect(parseSpiffeId(`spiffe://${'a'.repeat(256)}/x`).ok).toBe(false);
    expect(parseSpiffeId(`spiffe://${'a'.repeat(255)}/x`).ok).toBe(true);
  });

  it('property: every accepted ID is re-derivable from its parts and has only legal characters', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (s) => {
        const r = parseSpiffeId(s);
        if (!r.ok) return true;
        return (
          s === `spiffe://${r.trustDomain}${r.path}` &&
          /^[a-z0-9._-]+$/.test(r.trustDomain) &&
          r.path
            .split('/')
            .slice(1)
            .every((seg) => /^[A-Za-z0-9._-]+$/.test(seg) && seg !== '.' && seg !== '..')
        );
      }),
    );
  });

  it('property: well-formed IDs built from legal segments always parse', () => {
    const seg = fc
      .stringMatching(/^[A-Za-z0-9_-][A-Za-z0-9._-]{0,10}$/)
      .filter((s) => s !== '.' && s !== '..');
    fc.assert(
      fc.property(fc.array(seg, { minLength: 1, maxLength: 6 }), (segs) => {
        const r = parseSpiffeId(`spiffe://${td}/${segs.join('/')}`);
        return r.ok && r.path === `/${segs.join('/')}`;
      }),
    );
  });
});
