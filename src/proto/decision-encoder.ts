// Encodes a decision straight to CheckResponse bytes through a bounded cache of templates. Within
// one identity (or one deny reason) and one set of stripped headers, responses differ only in the
// 36-character decision id, so the bytes are encoded once with a placeholder and later answers are
// a copy with the id written in place — encoding was a tenth of a cache-hit check.
import { LRUCache } from 'lru-cache';
import type { Decision } from '../check/decision.js';
import {
  allowSetNames,
  buildResponse,
  extraRemovals,
  type ResponseContext,
} from './check-response.js';
import { encodeCheckResponse } from './encode-check-response.js';
import { Doorkeeper } from '../util/doorkeeper.js';

// '~' cannot occur in ids, roles, tenants or reasons; a header name could contain it, which is
// why a template is only used when the placeholder occurs exactly where it was put.
const PLACEHOLDER = '~'.repeat(36);
const PLACEHOLDER_BYTES = Buffer.from(PLACEHOLDER, 'latin1');
const DECISION_ID = /^[0-9a-f-]{36}$/;

interface Template {
  readonly bytes: Buffer;
  readonly offsets: readonly number[];
}

export class DecisionEncoder {
  private readonly templates = new LRUCache<string, Template | false>({ max: 10_000 });
  /**
   * Keys answered recently and not templated yet. A template pays off only when its identity
   * comes back; building (and keeping) one for every first answer doubled the encoding work of a
   * registry cache miss and kept a buffer alive per agent ever seen. A hash table rather than an
   * LRU of key strings: those strings outlived young collections and were most of what a cache
   * miss left for the garbage collector to copy (README, Performance).
   */
  private readonly seenOnce = new Doorkeeper(4096);

  /** Templates held (for tests and debugging). */
  get templated(): number {
    return this.templates.size;
  }

  encode(decision: Decision, ctx: ResponseContext): Buffer {
    if (!DECISION_ID.test(ctx.decisionId)) return encodeCheckResponse(buildResponse(decision, ctx));
    const key = templateKey(decision, ctx);
    let t = this.templates.get(key);
    if (t === undefined) {
      if (!this.seenOnce.seenBefore(key)) return encodeCheckResponse(buildResponse(decision, ctx));
      t = makeTemplate(decision, ctx);
      this.templates.set(key, t);
    }
    if (t === false) return encodeCheckResponse(buildResponse(decision, ctx));
    const out = Buffer.allocUnsafe(t.bytes.length);
    t.bytes.copy(out);
    for (const o of t.offsets) out.write(ctx.decisionId, o, 'latin1');
    return out;
  }
}

function makeTemplate(decision: Decision, ctx: ResponseContext): Template | false {
  const bytes = encodeCheckResponse(buildResponse(decision, { ...ctx, decisionId: PLACEHOLDER }));
  const offsets: number[] = [];
  for (
    let at = bytes.indexOf(PLACEHOLDER_BYTES);
    at !== -1;
    at = bytes.indexOf(PLACEHOLDER_BYTES, at + 36)
  )
    offsets.push(at);
  // Allow: the decision-id header and metadata; deny: also the JSON body.
  const expected = decision.allowed || ctx.mode === 'dry-run' ? 2 : 3;
  return offsets.length === expected ? { bytes, offsets } : false;
}

const SEP = '\u0000';

// Built with one template literal each: this runs on every check (an array and join() did show in
// allocation profiles). The removed headers are keyed by what varies: those beyond STRIP_ALWAYS.
function templateKey(decision: Decision, ctx: ResponseContext): string {
  if (decision.allowed) {
    const i = decision.identity;
    const removed = extraRemovals(ctx.facts, allowSetNames(true))?.join(',') ?? '';
    const who = `${i.agentId}${SEP}${i.tenant}${SEP}${i.role}${SEP}${i.method}`;
    return `A${SEP}${ctx.mode}${SEP}${who}${SEP}${removed}`;
  }
  if (ctx.mode === 'dry-run') {
    const removed = extraRemovals(ctx.facts, allowSetNames(false))?.join(',') ?? '';
    return `R${SEP}${decision.reason}${SEP}${removed}`;
  }
  const p = decision.partial;
  const who = `${p?.agentId ?? ''}${SEP}${p?.tenant ?? ''}${SEP}${p?.role ?? ''}`;
  return `D${SEP}${decision.reason}${SEP}${who}${SEP}${p?.method ?? ''}`;
}
