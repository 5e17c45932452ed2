// The hash chain itself: how a record is canonicalised, hashed, sealed onto its writer's chain and
// how checkpoints are signed. Writer and verifier both call these, so they hash identical bytes.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { sha256 } from '../util/sha256.js';
import canonicalize from 'canonicalize';
import type {
  AuditInput,
  ChainHead,
  ChainedRecord,
  CheckpointRecord,
  GapAuditInput,
  StoredRecord,
} from './types.js';

/** prev_hash of seq 1: a fixed value, so a chain cannot be started "in the middle" unnoticed. */
export const GENESIS_HASH = '0'.repeat(64);
export const GENESIS: ChainHead = Object.freeze({ seq: 0, hash: GENESIS_HASH });

const HEX64 = /^[0-9a-f]{64}$/;
// Writer ids go inside a Redis hash tag and a log line; `{`, `}` or spaces would break both.
const WRITER_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

export class AuditError extends Error {
  constructor(
    readonly code: 'invalid_options' | 'invalid_writer_id' | 'not_canonicalizable',
    message: string,
  ) {
    super(message);
    this.name = 'AuditError';
  }
}

export function isHex64(v: unknown): v is string {
  return typeof v === 'string' && HEX64.test(v);
}

export function assertWriterId(writer: string): void {
  if (!WRITER_ID.test(writer)) {
    throw new AuditError('invalid_writer_id', `audit writer id must match ${WRITER_ID.source}`);
  }
}

/** RFC 8785 (JCS) canonical JSON; throws for values JSON cannot carry (lone surrogates, NaN). */
export function canonicalJson(value: unknown): string {
  const flat = flatCanonicalJson(value);
  if (flat !== undefined) return flat;
  let out: string | undefined;
  try {
    out = canonicalize(value);
  } catch (err) {
    throw new AuditError('not_canonicalizable', (err as Error).message);
  }
  if (out === undefined) throw new AuditError('not_canonicalizable', 'value has no JSON form');
  return out;
}

/**
 * The fast path for what the hot path writes: a flat object of strings, finite numbers, booleans
 * and nulls. JCS sorts keys by UTF-16 code units (JavaScript's default sort) and serialises strings
 * and numbers exactly as JSON.stringify does, so this is byte-identical to the library (a property
 * test holds it to that) without its per-character work. Anything else returns undefined.
 */
export function flatCanonicalJson(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  // One JSON.stringify over a copy whose keys were inserted in sorted order.
  const sorted: Record<string, unknown> = {};
  for (const k of keys) {
    const v = obj[k];
    if (v === undefined) continue;
    if (!isFlatEntry(k, v)) return undefined;
    sorted[k] = v;
  }
  return JSON.stringify(sorted);
}

/**
 * Whether `k: v` serialises canonically from a plain object built in sorted key order: V8 keeps
 * insertion order for string keys except integer-like ones (always first, numerically) and
 * `__proto__` is not an own key there; values must be well-formed strings, finite numbers,
 * booleans or null. Key names are few, so a checked one is remembered.
 */
function isFlatEntry(k: string, v: unknown): boolean {
  if (!SAFE_KEYS.has(k)) {
    if (k === '__proto__' || INDEX_LIKE.test(k) || !k.isWellFormed()) return false;
    if (SAFE_KEYS.size < 1024) SAFE_KEYS.add(k);
  }
  if (typeof v === 'string') return v.isWellFormed();
  if (typeof v === 'number') return Number.isFinite(v);
  return typeof v === 'boolean' || v === null;
}
const SAFE_KEYS = new Set<string>();
const INDEX_LIKE = /^(0|[1-9][0-9]*)$/;

export function sha256Hex(text: string): string {
  return sha256(text, 'hex');
}

/** The hash a chained record must carry: over everything in it except `hash` itself. */
export function recordHash(record: Readonly<Record<string, unknown>>): string {
  return sha256Hex(canonicalJson('hash' in record ? omit(record, 'hash') : record));
}

/**
 * The canonical JSON a record was sealed over (everything but `hash`), kept on the record under a
 * symbol (JSON.stringify skips symbol keys). Its stored line is that text with `,"hash":"…"`
 * before the closing brace: sinks write it from these parts instead of serialising the record
 * again, or building the line as one more string (~700 bytes per check).
 */
const CANONICAL = Symbol('canonical');
const HASH_FIELD = ',"hash":"';
const LINE_END = '"}';

function canonicalOf(record: StoredRecord): string | undefined {
  return (record as { [CANONICAL]?: string })[CANONICAL];
}

/** The JSON line a sink stores for `record`: the sealed canonical text with its hash, or fresh. */
export function storedLine(record: StoredRecord): string {
  const c = canonicalOf(record);
  return c === undefined
    ? JSON.stringify(record)
    : `${c.slice(0, -1)}${HASH_FIELD}${(record as ChainedRecord).hash}${LINE_END}`;
}

/** Records' stored lines as UTF-8, each followed by a newline, or only between them. */
export function storedLinesBuffer(
  records: readonly StoredRecord[],
  newline: 'between' | 'after',
): Buffer {
  const texts = records.map((r) => canonicalOf(r) ?? JSON.stringify(r));
  let size = newline === 'after' ? texts.length : texts.length - 1;
  for (let i = 0; i < texts.length; i++) {
    size += Buffer.byteLength(texts[i]!);
    // Sealed: the closing brace goes, the hash field (64 hex digits) and a new brace come.
    if (canonicalOf(records[i]!) !== undefined)
      size += HASH_FIELD.length + 64 + LINE_END.length - 1;
  }
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (let i = 0; i < texts.length; i++) {
    if (i > 0 && newline === 'between') out[at++] = 0x0a;
    at += out.write(texts[i]!, at);
    if (canonicalOf(records[i]!) !== undefined) {
      at -= 1;
      at += out.write(HASH_FIELD, at, 'latin1');
      at += out.write((records[i] as ChainedRecord).hash, at, 'latin1');
      at += out.write(LINE_END, at, 'latin1');
    }
    if (newline === 'after') out[at++] = 0x0a;
  }
  if (at !== size) throw new Error(`stored lines: wrote ${at} bytes of ${size}`);
  return out;
}

/**
 * Appends `body` to the chain ending at `head`. Undefined fields are left out (JSON would drop
 * them anyway, and the verifier must hash exactly what was stored); non-finite numbers become
 * null for the same reason. Chain fields are set last so a body can never override them.
 */
export function sealRecord(
  body: AuditInput | GapAuditInput,
  writer: string,
  head: ChainHead,
): ChainedRecord {
  const fast = sealFlat(body as unknown as Readonly<Record<string, unknown>>, writer, head);
  if (fast !== undefined) return fast;
  const unhashed: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) {
    if (v === undefined) continue;
    unhashed[k] = typeof v === 'number' && !Number.isFinite(v) ? null : v;
  }
  unhashed.writer = writer;
  unhashed.seq = head.seq + 1;
  unhashed.prev_hash = head.hash;
  unhashed.hash = recordHash(unhashed);
  return unhashed as unknown as ChainedRecord;
}

const CHAIN_KEYS = ['prev_hash', 'seq', 'writer'];

/**
 * The hot path's sealing, for flat bodies (strings, numbers, booleans, null): the record is built
 * with its keys already in canonical (sorted) order, so one JSON.stringify is both the canonical
 * form to hash and, with the hash appended, the line to store. Same bytes hashed as the general
 * path (the chain tests hold it to that); undefined sends anything else down the general path.
 */
function sealFlat(
  body: Readonly<Record<string, unknown>>,
  writer: string,
  head: ChainHead,
): ChainedRecord | undefined {
  const inPlace = sealInPlace(body as Record<string, unknown>, writer, head);
  if (inPlace !== undefined) return inPlace;
  // Bodies built in sorted key order make this sort a single linear merge.
  const keys = Object.keys(body).concat(CHAIN_KEYS).sort();
  const out: Record<string, unknown> = {};
  let prev = '';
  for (const k of keys) {
    let v: unknown;
    if (k === 'writer' || k === 'seq' || k === 'prev_hash') {
      // A body field of that name is overridden by the chain's own, as on the general path.
      if (k === prev) continue;
      v = k === 'writer' ? writer : k === 'seq' ? head.seq + 1 : head.hash;
    } else {
      v = body[k];
      if (v === undefined || k === 'hash') continue;
    }
    prev = k;
    if (typeof v === 'number' && !Number.isFinite(v)) v = null;
    if (!isFlatEntry(k, v)) return undefined;
    out[k] = v;
  }
  const canonical = JSON.stringify(out);
  const hash = sha256Hex(canonical);
  out.hash = hash;
  (out as { [CANONICAL]?: string })[CANONICAL] = canonical;
  return out as unknown as ChainedRecord;
}

/**
 * The in-place layout, and the one statement of it: a body whose own keys are all in canonical
 * (sorted) order and that carries `prev_hash`, `seq` and `writer` slots, whatever they hold, is
 * sealed in place — the chain's values are written into the slots and one JSON.stringify of the
 * body itself is the canonical text: no copy, no sort (this was a tenth of a cache-hit check).
 * Decision events are built so (decision-event.ts). Anything else (unsorted keys, a `hash` key, a
 * value the fast path cannot vouch for) returns undefined before the body is touched.
 */
function sealInPlace(
  body: Record<string, unknown>,
  writer: string,
  head: ChainHead,
): ChainedRecord | undefined {
  const keys = Object.keys(body);
  let slots = 0;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    if (i > 0 && keys[i - 1]! >= k) return undefined;
    if (k === 'prev_hash' || k === 'seq' || k === 'writer') {
      slots++;
      continue;
    }
    const v = body[k];
    if (v === undefined) continue; // JSON.stringify leaves it out, as canonical JSON does
    if (k === 'hash' || !isFlatEntry(k, v)) return undefined;
  }
  if (slots !== 3) return undefined;
  body.prev_hash = head.hash;
  body.seq = head.seq + 1;
  body.writer = writer;
  const canonical = JSON.stringify(body);
  const hash = sha256Hex(canonical);
  body.hash = hash;
  (body as { [CANONICAL]?: string })[CANONICAL] = canonical;
  return body as unknown as ChainedRecord;
}

/** A checkpoint for `head`, HMAC-signed when a key is configured and unsigned otherwise. */
export function makeCheckpoint(
  writer: string,
  head: ChainHead,
  time: string,
  hmacKey: string | undefined,
): CheckpointRecord {
  const body: CheckpointRecord = {
    type: 'checkpoint',
    writer,
    seq: head.seq,
    head_hash: head.hash,
    time,
  };
  return hmacKey === undefined ? body : { ...body, hmac: checkpointMac(hmacKey, { ...body }) };
}

export function checkpointMac(hmacKey: string, cp: object): string {
  const body = canonicalJson(omit(cp as Record<string, unknown>, 'hmac'));
  return createHmac('sha256', hmacKey).update(body, 'utf8').digest('hex');
}

/** Constant-time, so a forger learns nothing from how long a wrong MAC takes to reject. */
export function checkpointMacValid(
  hmacKey: string,
  cp: Readonly<Record<string, unknown>>,
): boolean {
  if (!isHex64(cp.hmac)) return false;
  const expected = Buffer.from(checkpointMac(hmacKey, cp), 'hex');
  return timingSafeEqual(expected, Buffer.from(cp.hmac, 'hex'));
}

/**
 * The head a stored record proves for `writer` (an event's own seq/hash, or the head a checkpoint
 * attests), or undefined when the record is not this writer's or not shaped like one of ours.
 */
export function headOfRecord(record: unknown, writer: string): ChainHead | undefined {
  if (typeof record !== 'object' || record === null) return undefined;
  const r = record as Record<string, unknown>;
  if (r.writer !== writer || typeof r.seq !== 'number' || !Number.isSafeInteger(r.seq)) {
    return undefined;
  }
  const hash = r.type === 'checkpoint' ? r.head_hash : r.hash;
  return isHex64(hash) ? { seq: r.seq, hash } : undefined;
}

function omit(obj: Readonly<Record<string, unknown>>, key: string): Record<string, unknown> {
  const copy = { ...obj };
  delete copy[key];
  return copy;
}

/** Parses one stored line; undefined for anything that is not a JSON object. */
export function parseRecord(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
