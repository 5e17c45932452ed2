// Parses durations written as "250ms", "30s", "5m", "1h"; a bare number is seconds.

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDurationMs(value: string | number): number | undefined {
  if (typeof value === 'number')
    return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(value);
  if (m === null) return undefined;
  const n = Number(m[1]);
  const unit = UNITS[m[2] ?? 's'];
  return unit === undefined ? undefined : Math.round(n * unit);
}
