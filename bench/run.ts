// `make bench`: starts its own redis-server and JWKS server, seeds the registry, then measures
// throughput, latency, revocation propagation, memory and --workers scaling, prints every figure
// beside its SPEC §9 target and writes bench/results/<timestamp>.json. See bench/README.md.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { jwksOf, startJwksServer } from '../test/helpers/idp-servers.js';
import { CA_CN, JWT_AUDIENCE, TRUST_DOMAIN, buildFixtures } from './fixtures.js';
import { num, type Context } from './context.js';
import { LOAD_CPU, ROOT, SERVER_CPU } from './lib/procs.js';
import {
  coreNoise,
  describeMoved,
  describeNoise,
  isolateCore,
  type Isolation,
  type ServerCore,
} from './lib/isolate.js';
import { seedBulk, seedFixtures, startRegistry } from './lib/seed.js';
import { HALTING, latency, throughput } from './phases/throughput.js';
import { revocation } from './phases/revocation.js';
import { memory } from './phases/memory.js';
import { workers } from './phases/workers.js';
import { report } from './report.js';
import { profile } from './phases/profile.js';
import { compare } from './phases/compare.js';

const ALL = ['throughput', 'latency', 'revocation', 'memory', 'workers'];
const only = (process.env.BENCH_ONLY ?? ALL.join(',')).split(',');
const REGISTERED = num('BENCH_AGENTS', 100_000);
const started = Date.now();
const log = (line: string) =>
  process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s] ${line}\n`);

const tmp = mkdtempSync(join(tmpdir(), 'aa-bench-'));
const jwks = await startJwksServer();
const registry = await startRegistry();
let isolation: Isolation | undefined;
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.on(sig, () => {
    isolation?.restore();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  });
const results: Record<string, unknown> = {
  started_at: new Date(started).toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
};
try {
  log(`seeding redis ${registry.redis.url}: fixtures and ${REGISTERED} bulk agents`);
  const f = await buildFixtures(jwks.base);
  jwks.setKeys(jwksOf(...f.jwtKeys));
  await seedFixtures(registry.store, f);
  await seedBulk(registry.redis.url, 0, REGISTERED);
  const ctx: Context = {
    tmp,
    seconds: num('BENCH_SECONDS', 6),
    latencySeconds: num('BENCH_LATENCY_SECONDS', 5),
    latencyRepeats: num('BENCH_LATENCY_REPEATS', 3),
    hitRate: num('BENCH_HIT_RATE', 5000),
    lowRate: num('BENCH_LOW_RATE', 1000),
    missRate: num('BENCH_MISS_RATE', 2000),
    trials: num('BENCH_TRIALS', 200),
    soakSeconds: num('BENCH_SOAK_SECONDS', 60),
    serverCpu: SERVER_CPU === 'none' ? undefined : SERVER_CPU,
    awake:
      SERVER_CPU === 'none' || process.env.BENCH_KEEP_AWAKE === '0' ? [] : [SERVER_CPU, LOAD_CPU],
    nodeArgs: (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean),
    redisUrl: registry.redis.url,
    authzMain: process.env.BENCH_AUTHZ_MAIN || undefined,
    authzEnv: {
      REDIS_URL: registry.redis.url,
      AGENT_AUTHZ_SPIFFE_TRUST_DOMAINS: TRUST_DOMAIN,
      AGENT_AUTHZ_CERT_TRUSTED_ISSUERS: CA_CN,
      AGENT_AUTHZ_JWT_ISSUERS: JSON.stringify([
        {
          issuer: jwks.base,
          audiences: [JWT_AUDIENCE],
          jwks_url: jwks.jwksUrl,
          algorithms: ['RS256', 'ES256'],
        },
      ]),
      ...(process.env.BENCH_AUDIT_SINK
        ? { AGENT_AUTHZ_AUDIT_SINK: process.env.BENCH_AUDIT_SINK }
        : {}),
    },
    log,
  };
  results.settings = { ...ctx, log: undefined, authzEnv: undefined, registered_agents: REGISTERED };
  if (ctx.serverCpu !== undefined) results.server_core = await claimServerCore(ctx.serverCpu);
  if (only.includes('throughput')) {
    log('throughput at saturation (h2load, server on one core, h2load on the other)');
    results.throughput = await throughput(ctx, f);
  }
  if (only.includes('latency')) {
    log(
      `latency at fixed offered rates (open loop, from scheduled send time; median of ${ctx.latencyRepeats} runs)`,
    );
    log(
      ctx.awake.length > 0
        ? `  cores ${ctx.awake.join(' and ')} kept from halting while measured (bench/openloop/awake; BENCH_KEEP_AWAKE=0 turns it off); rows marked '${HALTING.slice(2)}' are run without`
        : '  idle cores left to halt (BENCH_KEEP_AWAKE=0 or unpinned)',
    );
    results.latency = await latency(ctx, f);
  }
  if (only.includes('revocation')) {
    log(`revocation propagation, 2 replicas, ${ctx.trials} trials`);
    results.revocation = await revocation(ctx, registry.store);
  }
  if (only.includes('memory')) {
    log(`memory: ${REGISTERED} registered agents, warm cache of 10 000, ${ctx.soakSeconds}s soak`);
    results.memory = await memory(ctx, f, REGISTERED);
  }
  if (only.includes('workers')) {
    log('multi-core: --workers 1 vs 2 (unpinned; h2load shares the two cores)');
    results.workers = await workers(ctx, f);
  }
  if (only.includes('compare')) {
    const other = process.env.BENCH_COMPARE_MAIN ?? '';
    log(`A/B throughput: ${other} (other) against this build`);
    results.compare = await compare(ctx, f, other);
  }
  if (only.includes('profile')) {
    log('cpu profile (node --cpu-prof) under h2load');
    process.stdout.write((await profile(ctx, f)) + '\n');
  }
  results.duration_s = Math.round((Date.now() - started) / 1000);
  process.stdout.write('\n' + report(results) + '\n');
  const dir = join(ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${new Date(started).toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(results, null, 2));
  log(`results written to ${file}`);
} finally {
  isolation?.restore();
  await registry.close();
  await jwks.close();
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(0);

/**
 * Moves other threads off the server core (lib/isolate.ts) and measures the core's noise before
 * and after, so every run shows how quiet the core it measured on was.
 */
async function claimServerCore(cpu: string): Promise<ServerCore> {
  const seconds = num('BENCH_NOISE_SECONDS', 3);
  const before = await coreNoise(cpu, LOAD_CPU, seconds);
  log(`server core ${cpu} noise, as found: ${describeNoise(before)}`);
  isolation = isolateCore(cpu, LOAD_CPU);
  if (isolation.skipped !== undefined) {
    log(`server core ${cpu} not isolated (${isolation.skipped})`);
    return { cpu, noise_before: before, isolated: false, skipped: isolation.skipped };
  }
  log(`moved off core ${cpu} for the run: ${describeMoved(isolation.moved) || 'nothing'}`);
  const after = await coreNoise(cpu, LOAD_CPU, seconds);
  log(`server core ${cpu} noise, isolated: ${describeNoise(after)}`);
  return { cpu, noise_before: before, isolated: true, moved: isolation.moved, noise_after: after };
}
