// Shared by the admin tests: a bootstrap admin key (only its digest goes into config), a temp
// copy of examples/registry.yaml, and a tiny JSON client for the admin listener.
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mintApiKey } from '../../src/credentials/api-key.js';

export const BOOTSTRAP = mintApiKey('bootstrap-admin');

/** Config overrides that enable the bootstrap admin key. */
export const bootstrapConfig = {
  admin_key_digest: BOOTSTRAP.digest,
  admin_key_id: BOOTSTRAP.keyId,
};

export function tempRegistry(): string {
  const dir = mkdtempSync(join(tmpdir(), 'aa-admin-'));
  const path = join(dir, 'registry.yaml');
  copyFileSync('examples/registry.yaml', path);
  return path;
}

export interface AdminResponse {
  readonly status: number;

  readonly body: any;
  readonly headers: Headers;
}

export class AdminClient {
  constructor(
    readonly port: number,
    /** null: send no key at all. */
    readonly key: string | null = BOOTSTRAP.secret,
  ) {}

  withKey(key: string | null): AdminClient {
    return new AdminClient(this.port, key);
  }

  async call(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<AdminResponse> {
    const h: Record<string, string> = { ...headers };
    if (this.key !== null && h.authorization === undefined && h['x-api-key'] === undefined)
      h.authorization = `Bearer ${this.key}`;
    let payload: string | undefined;
    if (body !== undefined) {
      payload = typeof body === 'string' ? body : JSON.stringify(body);
      h['content-type'] ??= 'application/json';
    }
    const res = await fetch(`http://127.0.0.1:${this.port}${path}`, {
      method,
      headers: h,
      body: payload,
    });
    const text = await res.text();
    return {
      status: res.status,
      body: text === '' ? undefined : JSON.parse(text),
      headers: res.headers,
    };
  }

  get(path: string) {
    return this.call('GET', path);
  }
  post(path: string, body?: unknown) {
    return this.call('POST', path, body);
  }
  put(path: string, body: unknown) {
    return this.call('PUT', path, body);
  }
  patch(path: string, body: unknown) {
    return this.call('PATCH', path, body);
  }
  delete(path: string) {
    return this.call('DELETE', path);
  }
}

/** A fresh SHA-256 fingerprint (64 hex chars) that no other agent uses. */
export function fingerprintOf(n: number): string {
  return n.toString(16).padStart(64, 'a');
}
