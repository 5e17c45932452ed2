import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sha256 } from '../../src/util/sha256.js';

// The digests are stored (API key digests in the registry, audit chain hashes): the one-shot path
// must give exactly what createHash gave, for text (as UTF-8) and for bytes.
describe('sha256', () => {
  const text = 'aak_key.ünïcødé-secret';
  const bytes = Uint8Array.from([0, 1, 2, 250, 255]);

  it('hashes text as UTF-8, in hex and base64url', () => {
    expect(sha256(text, 'hex')).toBe(createHash('sha256').update(text, 'utf8').digest('hex'));
    expect(sha256(text, 'base64url')).toBe(
      createHash('sha256').update(text, 'utf8').digest('base64url'),
    );
  });

  it('hashes bytes as they are', () => {
    expect(sha256(bytes, 'hex')).toBe(createHash('sha256').update(bytes).digest('hex'));
  });

  it('gives the well-known digest of the empty string', () => {
    expect(sha256('', 'hex')).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });
});
