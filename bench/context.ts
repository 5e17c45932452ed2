// What every bench phase shares: knobs from the environment, the scratch directory, the registry
// and the agent-authz configuration (environment variables, as an operator would set them).
export interface Context {
  readonly tmp: string;
  /** h2load measuring seconds per run (after a 2 s warm-up). */
  readonly seconds: number;
  readonly latencySeconds: number;
  /** Runs per latency row (median reported). */
  readonly latencyRepeats: number;
  readonly hitRate: number;
  /** A rate well under capacity, to show latency without queueing. */
  readonly lowRate: number;
  readonly missRate: number;
  readonly trials: number;
  readonly soakSeconds: number;
  readonly serverCpu: string | undefined;
  /** Cores kept from halting during the latency rows (BENCH_KEEP_AWAKE); empty when off. */
  readonly awake: readonly string[];
  readonly nodeArgs: string[];
  readonly redisUrl: string;
  /** BENCH_AUTHZ_MAIN: measure another build of agent-authz. */
  readonly authzMain: string | undefined;
  readonly authzEnv: Record<string, string>;
  log(line: string): void;
}

export function num(name: string, fallback: number): number {
  const v = process.env[name];
  return v === undefined || v === '' ? fallback : Number(v);
}
