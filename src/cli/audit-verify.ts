// `agent-authz audit verify`: checks a JSON-lines audit file or a Redis Stream and prints the
// first altered, removed or reordered record. The HMAC key is read from an environment variable
// named by a flag, never from a flag value, so it stays out of shell history and `ps` output.
import { Redis } from 'ioredis';
import { auditStreamKey } from '../audit/redis-stream-sink.js';
import { verifyFile, verifyStream } from '../audit/verify.js';
import type { VerifyOptions, VerifyResult } from '../audit/verify-result.js';

export const DEFAULT_HMAC_KEY_ENV = 'AGENT_AUTHZ_AUDIT_HMAC_KEY';

const USAGE = `usage: agent-authz audit verify (--file PATH | --redis-url URL (--stream KEY | --writer ID [--key-prefix P]))
       [--hmac-key-env NAME] [--allow-trimmed] [--require-sealed]

  --hmac-key-env NAME  environment variable holding the checkpoint HMAC key (default ${DEFAULT_HMAC_KEY_ENV})
  --allow-trimmed      accept streams trimmed with MAXLEN (checked from the oldest entry kept)
  --require-sealed     every chain must end with a checkpoint (writers that were shut down)
exit status: 0 verified, 1 verification failed, 2 usage or read error`;

interface Args {
  file?: string;
  redisUrl?: string;
  stream?: string;
  writer?: string;
  keyPrefix: string;
  hmacKeyEnv: string;
  allowTrimmed: boolean;
  requireSealed: boolean;
}

const VALUE_FLAGS: Record<string, keyof Args> = {
  '--file': 'file',
  '--redis-url': 'redisUrl',
  '--stream': 'stream',
  '--writer': 'writer',
  '--key-prefix': 'keyPrefix',
  '--hmac-key-env': 'hmacKeyEnv',
};

export async function auditVerifyCommand(
  argv: string[],
  out: NodeJS.WritableStream,
): Promise<number> {
  const args = parseArgs(argv);
  if (typeof args === 'string') {
    out.write(`${args}\n${USAGE}\n`);
    return 2;
  }
  const hmacKey = process.env[args.hmacKeyEnv];
  const opts: VerifyOptions = {
    hmacKey: hmacKey === undefined || hmacKey === '' ? undefined : hmacKey,
    allowTrimmedHead: args.allowTrimmed,
    requireSealed: args.requireSealed,
  };
  let result: VerifyResult;
  try {
    result = await run(args, opts);
  } catch (err) {
    out.write(`ERROR: cannot read the audit log: ${(err as Error).message}\n`);
    return 2;
  }
  if (!result.ok) {
    const where = result.line !== undefined ? `line ${result.line}` : `id ${result.id ?? '?'}`;
    out.write(
      `FAILED at seq ${result.seq ?? '?'} (writer ${result.writer ?? '?'}, ${where}): ` +
        `${result.code}: ${result.message}\n`,
    );
    return 1;
  }
  out.write(
    `OK: ${result.events} events, ${result.writers} writers, ${result.checkpoints} checkpoints\n`,
  );
  for (const w of result.warnings) {
    out.write(
      `WARN ${w.code}${w.writer === undefined ? '' : ` (writer ${w.writer})`}: ${w.message}\n`,
    );
  }
  return 0;
}

async function run(args: Args, opts: VerifyOptions): Promise<VerifyResult> {
  if (args.file !== undefined) return verifyFile(args.file, opts);
  const key = args.stream ?? auditStreamKey(args.writer!, args.keyPrefix);
  const redis = new Redis(args.redisUrl!, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined); // surfaced by the failing command instead
  try {
    await redis.connect();
    return await verifyStream(redis, key, opts);
  } finally {
    redis.disconnect();
  }
}

/** The parsed flags, or a message saying what is wrong with them. */
function parseArgs(argv: string[]): Args | string {
  const args: Args = {
    keyPrefix: 'agent-authz',
    hmacKeyEnv: DEFAULT_HMAC_KEY_ENV,
    allowTrimmed: false,
    requireSealed: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--allow-trimmed') args.allowTrimmed = true;
    else if (flag === '--require-sealed') args.requireSealed = true;
    else if (flag === '--help' || flag === '-h') return 'help:';
    else if (flag in VALUE_FLAGS) {
      const value = argv[++i];
      if (value === undefined || value.startsWith('--')) return `${flag} needs a value`;
      (args as unknown as Record<string, string>)[VALUE_FLAGS[flag]!] = value;
    } else return `unknown argument: ${flag}`;
  }
  if ((args.file === undefined) === (args.redisUrl === undefined)) {
    return 'give exactly one of --file or --redis-url';
  }
  if (args.redisUrl !== undefined && (args.stream === undefined) === (args.writer === undefined)) {
    return 'with --redis-url give exactly one of --stream or --writer';
  }
  return args;
}
