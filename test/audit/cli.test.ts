// `agent-authz audit verify` on files: exit status and the one-line report.
import { readFileSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { auditVerifyCommand } from '../../src/cli/audit-verify.js';
import { HMAC_KEY, fileTrail, tempFile, writeEvents } from './helpers.js';

function capture(): { stream: NodeJS.WritableStream; text: () => string } {
  let out = '';
  const stream = { write: (s: string) => ((out += s), true) } as unknown as NodeJS.WritableStream;
  return { stream, text: () => out };
}

describe('auditVerifyCommand', () => {
  afterEach(() => {
    delete process.env.AGENT_AUTHZ_AUDIT_HMAC_KEY;
  });

  it('prints OK and exits 0 for an intact file', async () => {
    const file = tempFile();
    await writeEvents(fileTrail(file), 7);
    process.env.AGENT_AUTHZ_AUDIT_HMAC_KEY = HMAC_KEY;
    const out = capture();
    expect(await auditVerifyCommand(['--file', file], out.stream)).toBe(0);
    expect(out.text()).toBe('OK: 7 events, 1 writers, 2 checkpoints\n');
  });

  it('prints FAILED with the seq, writer, line and code and exits 1 after a one-byte edit', async () => {
    const file = tempFile();
    await writeEvents(fileTrail(file), 7);
    const bytes = readFileSync(file);
    const at = bytes.indexOf('"latency_us":105');
    bytes[at + '"latency_us":10'.length] = '6'.charCodeAt(0); // 105 -> 106, seq 5
    writeFileSync(file, bytes);
    process.env.AGENT_AUTHZ_AUDIT_HMAC_KEY = HMAC_KEY;
    const out = capture();
    expect(await auditVerifyCommand(['--file', file], out.stream)).toBe(1);
    expect(out.text()).toMatch(/^FAILED at seq 5 \(writer replica-a, line 5\): hash_mismatch: /);
  });

  it('warns that the chain is unauthenticated when the key variable is unset', async () => {
    const file = tempFile();
    await writeEvents(fileTrail(file), 3);
    const out = capture();
    expect(
      await auditVerifyCommand(['--file', file, '--hmac-key-env', 'NO_SUCH_VAR'], out.stream),
    ).toBe(0);
    expect(out.text()).toContain('WARN unauthenticated');
  });

  it('exits 2 on bad usage or an unreadable file', async () => {
    expect(await auditVerifyCommand([], capture().stream)).toBe(2);
    expect(
      await auditVerifyCommand(['--file', '/x', '--redis-url', 'redis://h'], capture().stream),
    ).toBe(2);
    expect(await auditVerifyCommand(['--file', '/nonexistent/audit.jsonl'], capture().stream)).toBe(
      2,
    );
  });
});
