// Issue [audit] end to end: a real server process audits every decision into a hash-chained file,
// SIGTERM under load loses nothing silently, `audit verify` passes and then names a one-byte edit;
// dry-run answers allow while the audit shows the deny.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { auditVerifyCommand } from '../../src/cli/audit-verify.js';
import { EnvoyCheckClient, reasonOf } from '../helpers/official-envoy.js';
import { startTestServer } from '../helpers/server.js';

const HMAC = 'test-hmac-key-not-a-secret-0123456789';
const dir = mkdtempSync(join(tmpdir(), 'aa-audit-'));
const children: ChildProcess[] = [];

afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
});

function capture(): { out: Writable; text: () => string } {
  let buf = '';
  return {
    out: new Writable({
      write(c, _e, cb) {
        buf += String(c);
        cb();
      },
    }),
    text: () => buf,
  };
}

async function spawnServer(
  env: Record<string, string>,
): Promise<{ proc: ChildProcess; grpcPort: number; logs: () => string }> {
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--registry', 'examples/registry.yaml'],
    {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(proc);
  let logs = '';
  proc.stdout!.on('data', (d) => (logs += String(d)));
  proc.stderr!.on('data', (d) => (logs += String(d)));
  for (let i = 0; i < 200; i++) {
    const m = /"grpc_port":(\d+)/.exec(logs);
    if (m) return { proc, grpcPort: Number(m[1]), logs: () => logs };
    if (proc.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`server did not start:\n${logs}`);
}

describe('audit trail end to end', () => {
  it('SIGTERM under load: every answered check is in the chain or counted as dropped; verify passes, then names an edit', async () => {
    const file = join(dir, 'audit.jsonl');
    const { proc, grpcPort, logs } = await spawnServer({
      AGENT_AUTHZ_GRPC_PORT: '0',
      AGENT_AUTHZ_HTTP_PORT: '0',
      AGENT_AUTHZ_ADMIN_PORT: '0',
      AGENT_AUTHZ_BIND_ADDRESS: '127.0.0.1',
      AGENT_AUTHZ_SPIFFE_TRUST_DOMAINS: 'example.org',
      AGENT_AUTHZ_AUDIT_SINK: 'file',
      AGENT_AUTHZ_AUDIT_FILE: file,
      AGENT_AUTHZ_AUDIT_HMAC_KEY: HMAC,
      AGENT_AUTHZ_AUDIT_WRITER_ID: 'replica-1',
      AGENT_AUTHZ_AUDIT_CHECKPOINT_EVERY: '200',
      AGENT_AUTHZ_SHUTDOWN_GRACE: '3s',
    });
    const client = new EnvoyCheckClient(`127.0.0.1:${grpcPort}`);
    let answered = 0;
    let stop = false;
    const principals = ['alpha', 'beta', 'gamma', 'nobody'].map(
      (n) => `spiffe://example.org/agents/${n}`,
    );
    const worker = async (w: number) => {
      for (let i = 0; !stop && i < 100_000; i++) {
        try {
          await client.check({
            principal: principals[(i + w) % principals.length]!,
            headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
          });
          answered++;
        } catch {
          return; // the server went away after SIGTERM: that call was not answered
        }
      }
    };
    const workers = Array.from({ length: 8 }, (_, w) => worker(w));
    while (answered < 1500) await new Promise((r) => setTimeout(r, 20));
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
    stop = true;
    await Promise.all(workers);
    client.close();

    const records = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const decisions = records.filter((r) => r.type === 'decision');
    const dropped = records
      .filter((r) => r.type === 'gap')
      .reduce((n, r) => n + Number(r.dropped_overflow ?? 0) + Number(r.dropped_sink_error ?? 0), 0);
    expect(decisions.length + dropped).toBeGreaterThanOrEqual(answered);
    expect(decisions.some((d) => d.trace_id === '4bf92f3577b34da6a3ce929d0e0e4736')).toBe(true);
    expect(decisions.some((d) => d.reason === 'agent_not_approved' && d.agent_id === 'gamma')).toBe(
      true,
    );
    expect(logs()).toContain('stopped');

    const ok = capture();
    const prevKey = process.env.AGENT_AUTHZ_AUDIT_HMAC_KEY;
    process.env.AGENT_AUTHZ_AUDIT_HMAC_KEY = HMAC;
    try {
      expect(await auditVerifyCommand(['--file', file], ok.out)).toBe(0);
      expect(ok.text()).toMatch(/^OK: \d+ events/);
      // One byte: alpha → alphb in the 10th record.
      const lines = readFileSync(file, 'utf8').split('\n');
      const idx = lines.findIndex((l, i) => i >= 9 && l.includes('"agent_id":"alpha"'));
      lines[idx] = lines[idx]!.replace('"agent_id":"alpha"', '"agent_id":"alphb"');
      writeFileSync(file, lines.join('\n'));
      const bad = capture();
      expect(await auditVerifyCommand(['--file', file], bad.out)).toBe(1);
      const seq = (JSON.parse(lines[idx]!) as { seq: number }).seq;
      expect(bad.text()).toContain(`FAILED at seq ${seq}`);
      expect(bad.text()).toContain('hash_mismatch');
    } finally {
      if (prevKey === undefined) delete process.env.AGENT_AUTHZ_AUDIT_HMAC_KEY;
      else process.env.AGENT_AUTHZ_AUDIT_HMAC_KEY = prevKey;
    }
  });

  it('dry-run: the answer is allow, the audit and metrics record the deny', async () => {
    const file = join(dir, 'dry.jsonl');
    const srv = await startTestServer({
      registry_file: 'examples/registry.yaml',
      spiffe_trust_domains: 'example.org',
      mode: 'dry-run',
      audit_sink: 'file',
      audit_file: file,
      audit_writer_id: 'dry',
    });
    const client = new EnvoyCheckClient(srv.address);
    const res = await client.check({ principal: 'spiffe://example.org/agents/gamma' });
    expect(reasonOf(res)).toBe('allowed');
    const set = Object.fromEntries(
      res.ok_response!.headers!.map((h) => [h.header.key, h.header.value]),
    );
    expect(set['x-agent-authz-dry-run-reason']).toBe('agent_not_approved');
    expect(set['x-agent-id']).toBeUndefined();
    client.close();
    const metrics = await srv.app.metrics.registry.metrics();
    expect(metrics).toContain(
      'agent_authz_decisions_total{decision="deny",reason="agent_not_approved",identity_method="spiffe",mode="dry-run"} 1',
    );
    await srv.stop();
    const events = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.find((e) => e.type === 'decision')).toMatchObject({
      decision: 'deny',
      mode: 'dry-run',
      reason: 'agent_not_approved',
      agent_id: 'gamma',
    });
  });
});
