// `agent-authz agents ...` and `tenants ...`: the same RegistryService the admin HTTP API calls,
// run in-process against the configured store (REDIS_URL or the embedded file), so the CLI and
// the API cannot disagree about validation, status rules or auditing. Output is JSON.
import { readFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { AdminError } from '../admin/admin-error.js';
import { RegistryService, type Actor } from '../admin/registry-service.js';
import { isStatusAction } from '../admin/status-transitions.js';
import { publicKey } from '../admin/key-service.js';
import { compact } from '../admin/record-input.js';
import { loadConfig, type Config } from '../config/config.js';
import { parseDurationMs } from '../config/duration.js';
import { createLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { buildStore } from '../server/app.js';
import { buildAuditor } from '../server/wiring.js';

export const AGENTS_USAGE = `  agents list [--tenant T] [--status S] | get ID | create --file F | delete ID
         approve|suspend|reinstate|revoke ID | rotate-cert ID --fingerprint FP [--grace 24h]`;
export const TENANTS_USAGE = `  tenants list | get ID | create (--file F | --id T [--require-agent-id]) | delete ID`;

export const KEYS_USAGE = `  keys create --tenant T [--scope evaluate|read|admin] [--bound-agent A] [--role R]...
       [--label L] [--expires-at TIME] [--key-id ID] | list [--tenant T] | get ID | revoke ID | delete ID`;

type Out = NodeJS.WritableStream;

/** Runs `fn` with a service over the configured store and auditor, then closes both. */
async function withService<T>(fn: (svc: RegistryService, actor: Actor) => Promise<T>): Promise<T> {
  const loaded = loadConfig({ overrides: { registry_watch: false } });
  // A writer id of its own: the CLI must never append to a running server's hash chain.
  const config: Config = {
    ...loaded,
    audit_writer_id: `${loaded.audit_writer_id}-cli-${process.pid}`,
  };
  const logger = createLogger('warn', process.stderr);
  const store = buildStore(config, logger);
  const auditor = await buildAuditor(config, store, createMetrics(), logger);
  try {
    if ('waitReady' in store)
      await (store as { waitReady(ms: number): Promise<boolean> }).waitReady(3000);
    return await fn(new RegistryService(store, auditor), `cli:${safeUser()}@${hostname()}`);
  } finally {
    await auditor.close();
    await store.close();
  }
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

function print(out: Out, value: unknown): void {
  out.write(JSON.stringify(value, null, 2) + '\n');
}

/** A record from a YAML or JSON file (JSON is YAML). */
function readRecordFile(path: string): unknown {
  return parseYaml(readFileSync(path, 'utf8')) as unknown;
}

function need(value: string | undefined, usage: string): string {
  if (value === undefined || value === '')
    throw new AdminError('invalid_request', `usage: agent-authz ${usage}`);
  return value;
}

type Command = (argv: string[], out: Out, errOut?: Out) => Promise<number>;

/** A subcommand whose admin errors (validation, not found, conflict) are printed, exit status 1. */
function command(run: (argv: string[], out: Out) => Promise<number>): Command {
  return (argv, out, errOut = process.stderr) => reported(() => run(argv, out), errOut);
}

export const agentsCommand = command((argv, out) => agents(argv, out));
export const tenantsCommand = command((argv, out) => tenants(argv, out));
export const keysAdminCommand = command((argv, out) => keys(argv, out));

async function agents(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      tenant: { type: 'string' },
      status: { type: 'string' },
      file: { type: 'string', short: 'f' },
      fingerprint: { type: 'string' },
      grace: { type: 'string', default: '24h' },
    },
  });
  const id = positionals[0];
  return withService(async (svc, actor) => {
    if (sub === 'list')
      print(out, await svc.agents.list({ tenant: values.tenant, status: values.status }));
    else if (sub === 'get') print(out, await svc.agents.get(need(id, 'agents get ID')));
    else if (sub === 'create')
      print(
        out,
        await svc.agents.create(readRecordFile(need(values.file, 'agents create --file F')), actor),
      );
    else if (sub === 'delete') {
      await svc.agents.delete(need(id, 'agents delete ID'), actor);
      out.write(`deleted agent ${id}\n`);
    } else if (sub !== undefined && isStatusAction(sub))
      print(out, await svc.agents.transition(need(id, `agents ${sub} ID`), sub, actor));
    else if (sub === 'rotate-cert') {
      const usage = 'agents rotate-cert ID --fingerprint FP [--grace 24h]';
      const graceMs = parseDurationMs(values.grace!);
      if (graceMs === undefined)
        throw new AdminError('invalid_request', `--grace: not a duration (${values.grace})`);
      const body = {
        cert_fingerprint: need(values.fingerprint, usage),
        grace_seconds: Math.round(graceMs / 1000),
      };
      print(out, await svc.agents.rotateCertificate(need(id, usage), body, actor));
    } else throw new AdminError('invalid_request', `usage:\n${AGENTS_USAGE}`);
    return 0;
  });
}

async function tenants(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      file: { type: 'string', short: 'f' },
      id: { type: 'string' },
      'require-agent-id': { type: 'boolean', default: false },
    },
  });
  const id = positionals[0];
  return withService(async (svc, actor) => {
    if (sub === 'list') print(out, await svc.tenants.list());
    else if (sub === 'get') print(out, await svc.tenants.get(need(id, 'tenants get ID')));
    else if (sub === 'create') {
      const body =
        values.file !== undefined
          ? readRecordFile(values.file)
          : {
              tenant_id: need(values.id ?? id, 'tenants create --id T'),
              require_agent_id: values['require-agent-id'],
            };
      print(out, await svc.tenants.create(body, actor));
    } else if (sub === 'delete') {
      await svc.tenants.delete(need(id, 'tenants delete ID'), actor);
      out.write(`deleted tenant ${id}\n`);
    } else throw new AdminError('invalid_request', `usage:\n${TENANTS_USAGE}`);
    return 0;
  });
}

/** The key secret is printed once, here; only its digest was stored. */
async function keys(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      tenant: { type: 'string' },
      scope: { type: 'string', default: 'evaluate' },
      label: { type: 'string' },
      'bound-agent': { type: 'string' },
      role: { type: 'string', multiple: true },
      'expires-at': { type: 'string' },
      'key-id': { type: 'string' },
    },
  });
  const id = positionals[0];
  return withService(async (svc, actor) => {
    if (sub === 'list')
      print(
        out,
        (await svc.keys.list({ tenant: values.tenant })).map((k) => publicKey(k)),
      );
    else if (sub === 'get') print(out, publicKey(await svc.keys.get(need(id, 'keys get KEY_ID'))));
    else if (sub === 'create') {
      const { key, secret } = await svc.keys.create(
        compact({
          key_id: values['key-id'],
          tenant: need(values.tenant, 'keys create --tenant T'),
          scope: values.scope,
          label: values.label,
          bound_agent_id: values['bound-agent'],
          permitted_roles: values.role,
          expires_at: values['expires-at'],
        }),
        actor,
      );
      out.write(
        `key_id: ${key.key_id}\nsecret: ${secret}\n(the secret is shown once; only its SHA-256 digest is stored)\n`,
      );
    } else if (sub === 'revoke') {
      await svc.keys.revoke(need(id, 'keys revoke KEY_ID'), actor);
      out.write(`revoked ${id}\n`);
    } else if (sub === 'delete') {
      await svc.keys.delete(need(id, 'keys delete KEY_ID'), actor);
      out.write(`deleted key ${id}\n`);
    } else throw new AdminError('invalid_request', `usage:\n${KEYS_USAGE}`);
    return 0;
  });
}

/** Admin errors are one line per problem on stderr and exit 1: what a shell script can act on. */
async function reported(run: () => Promise<number>, errOut: Out): Promise<number> {
  try {
    return await run();
  } catch (err) {
    if (!(err instanceof AdminError)) throw err;
    errOut.write(`agent-authz: ${err.code}: ${err.message}\n`);
    for (const p of err.problems) errOut.write(`  - ${p}\n`);
    return 1;
  }
}
