#!/usr/bin/env node
// The agent-authz executable: serve, check, registry, keys, audit.
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/config.js';
import { RegistryFileError } from '../registry/registry-file.js';
import { createLogger } from '../observability/logger.js';
import { startApp } from '../server/app.js';
import { lowerV8ThreadPriority } from '../server/v8-threads.js';
import { attachWorker, isWorkerProcess, runPrimary, workerConfig } from '../server/workers.js';
import { CHECK_USAGE, checkCommand } from './check.js';
import { registryCommand } from './registry-commands.js';
import {
  AGENTS_USAGE,
  KEYS_USAGE,
  TENANTS_USAGE,
  agentsCommand,
  keysAdminCommand,
  tenantsCommand,
} from './admin-commands.js';

const USAGE = `usage: agent-authz <command>
  serve [--config FILE] [--registry FILE] [--workers N]   run the ext_authz server (N processes)
  check ...                                 send one CheckRequest and print the decision
  registry import FILE [--replace] | export [-o FILE]
${KEYS_USAGE}
${AGENTS_USAGE}
${TENANTS_USAGE}
  audit verify --file PATH | --redis-url URL --stream KEY
${CHECK_USAGE}`;

async function serve(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      registry: { type: 'string' },
      workers: { type: 'string' },
    },
  });
  const overrides: Record<string, unknown> = {};
  if (values.registry !== undefined) overrides.registry_file = values.registry;
  if (values.workers !== undefined) overrides.workers = values.workers;
  const config = loadConfig({ file: values.config, overrides });
  const logger = createLogger(config.log_level);
  // --workers N (N > 1): this process becomes the cluster primary; the workers re-run this command.
  if (config.workers > 1 && !isWorkerProcess()) return runPrimary(config, logger);
  const worker = isWorkerProcess();
  if (config.v8_thread_nice > 0) {
    const v8 = lowerV8ThreadPriority(config.v8_thread_nice);
    if (v8.skipped === undefined)
      logger.debug(
        { threads: v8.lowered.length, nice: config.v8_thread_nice },
        'v8 threads lowered',
      );
    else logger.info({ reason: v8.skipped }, 'v8 thread priority left unchanged');
  }
  const app = await startApp(worker ? workerConfig(config) : config, { logger });
  if (worker) attachWorker(app.metrics.registry, app.isReady);
  const shutdown = (signal: string) => {
    logger.info({ signal }, 'signal received');
    void app.stop().then(() => process.exit(0));
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  return new Promise(() => undefined);
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'serve':
      return serve(rest);
    case 'check':
      return checkCommand(rest, process.stdout);
    case 'registry':
      return registryCommand(rest, process.stdout);
    case 'keys':
      // keys create|revoke|list|get|delete go through the admin service (validated, audited).
      return keysAdminCommand(rest, process.stdout);
    case 'agents':
      return agentsCommand(rest, process.stdout);
    case 'tenants':
      return tenantsCommand(rest, process.stdout);
    case 'audit': {
      if (rest[0] !== 'verify') throw new Error('usage: agent-authz audit verify ...');
      const { auditVerifyCommand } = await import('./audit-verify.js');
      return auditVerifyCommand(rest.slice(1), process.stdout);
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE + '\n');
      return cmd === undefined ? 2 : 0;
    default:
      process.stderr.write(`unknown command: ${cmd}\n${USAGE}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigError || err instanceof RegistryFileError)
      process.stderr.write(`${err.message}\n`);
    else process.stderr.write(`agent-authz: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
