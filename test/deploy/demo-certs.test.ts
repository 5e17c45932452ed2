// envoy/make-demo-certs.sh is an interface the integration tests depend on: file names, SPIFFE IDs,
// X.509-SVID leaf shape and the fingerprints.txt format are all checked here with Node's own X.509.
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const SCRIPT = new URL('../../envoy/make-demo-certs.sh', import.meta.url).pathname;
const NAMES = ['alpha', 'beta'];
let dir: string;

const run = (out: string, env: Record<string, string> = {}): string =>
  execFileSync('bash', [SCRIPT, out], {
    env: { ...process.env, AGENTS: NAMES.join(' '), ...env },
    encoding: 'utf8',
  });
const cert = (file: string): X509Certificate => new X509Certificate(readFileSync(join(dir, file)));

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'agent-authz-certs-'));
  run(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('make-demo-certs.sh', () => {
  it('makes the demo CA with the documented subject', () => {
    const ca = cert('ca.crt');
    expect(ca.ca).toBe(true);
    expect(ca.subject.split('\n')).toEqual(['O=agent-authz demo', 'CN=agent-authz demo CA']);
    expect(statSync(join(dir, 'ca.key')).mode & 0o077).toBe(0);
  });

  it('makes an Envoy server certificate for localhost and 127.0.0.1', () => {
    const server = cert('envoy.crt');
    expect(server.checkIssued(cert('ca.crt'))).toBe(true);
    expect(server.checkHost('localhost')).toBe('localhost');
    expect(server.checkIP('127.0.0.1')).toBe('127.0.0.1');
  });

  it.each(NAMES)('makes an X.509-SVID for agent %s issued by the CA', (name) => {
    const ca = cert('ca.crt');
    const leaf = cert(`agent-${name}.crt`);
    const uris = (leaf.subjectAltName ?? '').split(', ').filter((s) => s.startsWith('URI:'));
    expect(uris).toEqual([`URI:spiffe://example.org/agents/${name}`]);
    expect(leaf.ca).toBe(false);
    expect(leaf.checkIssued(ca)).toBe(true);
    expect(leaf.verify(ca.publicKey)).toBe(true);
    expect(leaf.keyUsage).toContain('1.3.6.1.5.5.7.3.2'); // id-kp-clientAuth
    const now = Date.now();
    expect(Date.parse(leaf.validFrom)).toBeLessThanOrEqual(now);
    expect(Date.parse(leaf.validTo)).toBeGreaterThan(now);
    const days = (Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)) / 86_400_000;
    expect(Math.round(days)).toBe(30);
    const text = execFileSync(
      'openssl',
      ['x509', '-in', join(dir, `agent-${name}.crt`), '-noout', '-text'],
      {
        encoding: 'utf8',
      },
    );
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature\n/);
    expect(text).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
  });

  it('writes "<name> <sha256 of DER>" lines to fingerprints.txt', () => {
    const lines = readFileSync(join(dir, 'fingerprints.txt'), 'utf8').trimEnd().split('\n');
    expect(lines).toEqual(
      NAMES.map((name) => {
        const der = cert(`agent-${name}.crt`).raw;
        return `${name} ${createHash('sha256').update(der).digest('hex')}`;
      }),
    );
  });

  it('is idempotent: a second run keeps every certificate', () => {
    const before = readFileSync(join(dir, 'fingerprints.txt'), 'utf8');
    const ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
    run(dir);
    expect(readFileSync(join(dir, 'fingerprints.txt'), 'utf8')).toBe(before);
    expect(readFileSync(join(dir, 'ca.crt'), 'utf8')).toBe(ca);
  });

  it('refuses agent names that cannot form a SPIFFE path segment', () => {
    expect(() => run(join(dir, 'bad'), { AGENTS: 'Bad/Name' })).toThrow();
  });
});
