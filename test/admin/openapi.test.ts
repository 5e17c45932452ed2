// docs/admin-api.openapi.yaml and the router must describe the same API: every route is
// documented, every documented operation exists, every $ref resolves, every error code is listed.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ADMIN_ERROR_CODES } from '../../src/admin/admin-error.js';
import { ADMIN_ROUTES } from '../../src/admin/admin-routes.js';

const doc = parse(readFileSync('docs/admin-api.openapi.yaml', 'utf8')) as any;
const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

describe('admin API OpenAPI document', () => {
  it('is OpenAPI 3.1', () => {
    expect(doc.openapi).toMatch(/^3\.1\./);
  });

  it('documents every route of the router', () => {
    const missing = ADMIN_ROUTES.filter(
      (r) => doc.paths?.[r.path]?.[r.method.toLowerCase()] === undefined,
    ).map((r) => `${r.method} ${r.path}`);
    expect(missing).toEqual([]);
  });

  it('documents no operation the router lacks', () => {
    const routes = new Set(ADMIN_ROUTES.map((r) => `${r.method} ${r.path}`));
    const extra: string[] = [];
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, unknown>>))
      for (const m of Object.keys(item))
        if (METHODS.includes(m) && !routes.has(`${m.toUpperCase()} ${path}`))
          extra.push(`${m} ${path}`);
    expect(extra).toEqual([]);
  });

  it('resolves every $ref', () => {
    const refs: string[] = [];
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v !== null && typeof v === 'object')
        for (const [k, x] of Object.entries(v)) {
          if (k === '$ref') refs.push(String(x));
          else walk(x);
        }
    };
    walk(doc);
    const unresolved = refs.filter((r) => {
      let node: any = doc;
      for (const part of r.replace(/^#\//, '').split('/')) node = node?.[part];
      return node === undefined;
    });
    expect(refs.length).toBeGreaterThan(10);
    expect(unresolved).toEqual([]);
  });

  it('lists every error code', () => {
    expect([...doc.components.schemas.Error.properties.error.enum].sort()).toEqual(
      [...ADMIN_ERROR_CODES].sort(),
    );
  });
});
