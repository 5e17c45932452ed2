// Locates the repository's proto/ directory from both src/ (tests) and dist/src/ (built package).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

export function protoRoot(): string {
  if (cached !== undefined) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'proto');
    if (existsSync(join(candidate, 'envoy', 'service', 'auth', 'v3', 'external_auth.proto'))) {
      cached = candidate;
      return candidate;
    }
    dir = dirname(dir);
  }
  throw new Error('proto/ directory not found next to the agent-authz package');
}
