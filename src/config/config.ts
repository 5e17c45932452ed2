// Configuration: an optional YAML file, then AGENT_AUTHZ_* environment variables (which win),
// validated once, frozen, and failing fast with one message per problem.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { parseDurationMs } from './duration.js';

const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const ms = parseDurationMs(v);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `not a duration: ${String(v)} (use 250ms, 30s, 5m)` });
    return z.NEVER;
  }
  return ms;
});
const port = z.coerce.number().int().min(0).max(65535);
const bool = z.union([z.boolean(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'boolean') return v;
  const s = v.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(s)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(s)) return false;
  ctx.addIssue({ code: 'custom', message: `not a boolean: ${v}` });
  return z.NEVER;
});
const list = z
  .union([z.array(z.string()), z.string()])
  .transform((v) =>
    (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter((s) => s !== ''),
  );
const ASYMMETRIC = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
] as const;

const jwtIssuer = z
  .object({
    issuer: z.string().min(1),
    audiences: z.array(z.string().min(1)).min(1),
    jwks_url: z.string().url().optional(),
    discovery_url: z.string().url().optional(),
    algorithms: z.array(z.enum(ASYMMETRIC)).min(1).default(['RS256', 'ES256']),
    /** JWT-SVID issuer: `sub` must be a SPIFFE ID and is matched to the agent's spiffe_id. */
    spiffe: z.boolean().default(false),
  })
  .strict()
  .refine((i) => (i.jwks_url === undefined) !== (i.discovery_url === undefined), {
    message: 'set exactly one of jwks_url or discovery_url',
  });

const schema = z
  .object({
    mode: z.enum(['enforce', 'dry-run']).default('enforce'),
    bind_address: z.string().default('0.0.0.0'),
    grpc_port: port.default(9191),
    http_port: port.default(8080),
    admin_port: port.default(8181),
    admin_enabled: bool.default(true),
    // h2c: agent-authz's own HTTP/2 (docs/transport.md); grpc-js: the conventional fallback.
    grpc_transport: z.enum(['h2c', 'grpc-js']).default('h2c'),
    grpc_max_connections: z.coerce.number().int().min(1).default(4096),
    // Unset: twice max_in_flight (at least 1024), so overload is answered with a deny, not a refusal.
    grpc_max_concurrent_streams: z.coerce
      .number()
      .int()
      .min(1)
      .max(2 ** 31 - 1)
      .optional(),
    grpc_max_header_list_size: z.coerce
      .number()
      .int()
      .min(4096)
      .max(16 * 1024 * 1024)
      .default(65_536),
    grpc_max_buffered_bytes: z.coerce
      .number()
      .int()
      .min(1024 * 1024)
      .default(64 * 1024 * 1024),
    grpc_reset_burst: z.coerce.number().int().min(1).default(1000),
    grpc_reset_rate: z.coerce.number().int().min(1).default(100),
    grpc_stream_idle_timeout: duration.prefault('30s'),
    grpc_keepalive_time: duration.prefault('30s'),
    grpc_keepalive_timeout: duration.prefault('10s'),
    grpc_max_connection_age: duration.prefault('15m'),
    grpc_max_connection_age_grace: duration.prefault('30s'),
    workers: z.coerce.number().int().min(1).max(64).default(1),
    log_level: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info'),

    registry_file: z.string().optional(),
    registry_watch: bool.default(true),
    redis_url: z.string().optional(),
    redis_sentinels: list.default([]),
    redis_sentinel_name: z.string().default('mymaster'),
    redis_cluster_nodes: list.default([]),
    redis_password: z.string().optional(),
    redis_tls: bool.default(false),
    redis_command_timeout: duration.prefault('50ms'),
    redis_key_prefix: z
      .string()
      .regex(/^[a-z0-9_-]+$/)
      .default('agent-authz'),

    cache_max_entries: z.coerce.number().int().min(100).default(100_000),
    cache_ttl: duration.prefault('30s'),
    cache_negative_ttl: duration.prefault('2s'),
    registry_max_stale: duration.prefault('60s'),
    registry_version_poll: duration.prefault('1s'),

    // Semicolon-separated: each entry is a DN ("CN=x,O=y") or a bare CN, and DNs contain commas.
    cert_trusted_issuers: z
      .union([z.array(z.string()), z.string()])
      .transform((v) =>
        (Array.isArray(v) ? v : v.split(/[;\n]/)).map((s) => s.trim()).filter((s) => s !== ''),
      )
      .default([]),
    cert_trusted_ca_file: z.string().optional(),
    cert_clock_skew: duration.prefault('30s'),
    spiffe_trust_domains: list.default([]),
    trust_xfcc: bool.default(false),
    trust_forwarded_headers: bool.default(false),
    require_agent_id: bool.default(false),

    jwt_issuers: z.array(jwtIssuer).default([]),
    jwt_clock_skew: duration.prefault('30s'),
    jwks_refresh_interval: duration.prefault('5m'),
    jwks_max_stale: duration.prefault('1h'),
    jwks_cooldown: duration.prefault('30s'),
    jwks_timeout: duration.prefault('2s'),
    token_cache_max_entries: z.coerce.number().int().min(0).default(10_000),

    conjur_url: z.string().url().optional(),
    conjur_timeout: duration.prefault('100ms'),
    conjur_cache_ttl: duration.prefault('60s'),

    admin_key_id: z.string().optional(),
    admin_key_digest: z
      .string()
      .regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex chars (SHA-256)')
      .optional(),

    audit_sink: z.enum(['auto', 'file', 'redis', 'none']).default('auto'),
    audit_file: z.string().default('agent-authz-audit.jsonl'),
    audit_stream: z.string().optional(),
    audit_queue_size: z.coerce.number().int().min(1).default(10_000),
    audit_batch_size: z.coerce.number().int().min(1).default(64),
    audit_writer_id: z.string().default(hostname()),
    audit_hmac_key: z.string().min(16).optional(),
    audit_checkpoint_every: z.coerce.number().int().min(1).default(1000),

    max_in_flight: z.coerce.number().int().min(1).default(2048),
    // V8's compiler threads run at this nice value so they do not preempt the event loop (0: off).
    v8_thread_nice: z.coerce.number().int().min(0).max(19).default(19),
    shutdown_grace: duration.prefault('10s'),
    shutdown_delay: duration.prefault('0s'),
  })
  .strict();

export type Config = Readonly<z.infer<typeof schema>>;
export type JwtIssuerConfig = z.infer<typeof jwtIssuer>;

/** Environment variable for each config key: AGENT_AUTHZ_<KEY>, except REDIS_URL. */
export function envName(key: string): string {
  return key === 'redis_url' ? 'REDIS_URL' : `AGENT_AUTHZ_${key.toUpperCase()}`;
}

export const CONFIG_KEYS = Object.keys(schema.shape);

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  file?: string | undefined;
  overrides?: Record<string, unknown>;
}

export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const problems: string[] = [];
  let fromFile: Record<string, unknown> = {};
  const file = opts.file ?? env.AGENT_AUTHZ_CONFIG;
  if (file !== undefined && file !== '') {
    try {
      const parsed: unknown = parseYaml(readFileSync(file, 'utf8'));
      if (parsed !== null && typeof parsed === 'object')
        fromFile = parsed as Record<string, unknown>;
      else if (parsed != null) problems.push(`${file}: top level must be a mapping`);
    } catch (err) {
      problems.push(`${file}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const fromEnv: Record<string, unknown> = {};
  for (const key of CONFIG_KEYS) {
    const v = env[envName(key)];
    if (v === undefined || v === '') continue;
    if (key === 'jwt_issuers') {
      try {
        fromEnv[key] = JSON.parse(v);
      } catch {
        problems.push(`${envName(key)}: must be a JSON array of issuer objects`);
      }
    } else fromEnv[key] = v;
  }
  for (const name of Object.keys(env)) {
    if (name.startsWith('AGENT_AUTHZ_') && name !== 'AGENT_AUTHZ_CONFIG') {
      const key = name.slice('AGENT_AUTHZ_'.length).toLowerCase();
      if (!CONFIG_KEYS.includes(key)) problems.push(`${name}: unknown setting`);
    }
  }
  const result = schema.safeParse({ ...fromFile, ...fromEnv, ...opts.overrides });
  if (!result.success) {
    for (const issue of result.error.issues) {
      const key = String(issue.path[0] ?? '');
      const where = key === '' ? 'config' : `${key} (${envName(key)})`;
      const rest = issue.path.slice(1).join('.');
      problems.push(`${where}${rest === '' ? '' : ` ${rest}`}: ${issue.message}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const cfg = result.data!;
  if (cfg.redis_url !== undefined && cfg.registry_file !== undefined) {
    // Redis is the registry; a file given too is only a seed for `registry import`.
  }
  return Object.freeze(cfg);
}
