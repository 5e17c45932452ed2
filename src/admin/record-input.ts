// Turning untrusted request bodies into registry records: one problem line per mistake, unknown
// fields refused (the record schemas are strict), server-owned fields never taken from a client.
import type { z } from 'zod';
import { describeIssues } from '../registry/records.js';
import { invalidRequest } from './admin-error.js';

export type JsonObject = Record<string, unknown>;

/** The body as a plain object, or invalid_request. */
export function asObject(body: unknown): JsonObject {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw invalidRequest(['body: must be a JSON object']);
  return body as JsonObject;
}

/** Refuses fields the client may not set here (ids in the path, timestamps, status). */
export function refuseFields(body: JsonObject, fields: readonly string[], why: string): void {
  const problems = fields.filter((f) => f in body).map((f) => `${f}: ${why}`);
  if (problems.length > 0) throw invalidRequest(problems);
}

/** Validates a candidate record; every schema issue becomes one problem line. */
export function parseRecord<S extends z.ZodType>(schema: S, candidate: unknown): z.output<S> {
  const r = schema.safeParse(candidate);
  if (!r.success) throw invalidRequest(describeIssues(r.error));
  return r.data;
}

/**
 * RFC 7396 merge patch, one level deep (records are flat): a field set to null is removed, any
 * other value replaces the current one.
 */
export function mergePatch(current: object, patch: JsonObject): JsonObject {
  const out: JsonObject = { ...current };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}

/** Drops undefined fields so records serialise the same way in Redis and in the YAML file. */
export function compact<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
