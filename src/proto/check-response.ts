// Turns a decision into Envoy's CheckResponse, as the object encode-check-response.ts writes to the
// wire. Allow overwrites the identity headers and strips credentials and stray x-agent-* headers;
// deny carries the HTTP status, a reason header and a JSON body. No header is ever both set and
// removed, because Envoy applies removals last.
import type { Decision, Identity } from '../check/decision.js';
import type { RequestFacts } from '../check/facts.js';
import {
  SET_HEADERS,
  STRIP_ALWAYS,
  isAlwaysStripped,
  isIdentitySpelling,
} from '../check/header-rules.js';
import { REASONS, type Reason } from '../check/reasons.js';

/** HeaderValueOption.HeaderAppendAction in envoy/config/core/v3/base.proto. */
const OVERWRITE_IF_EXISTS_OR_ADD = 2;

export type Mode = 'enforce' | 'dry-run';

export interface ResponseContext {
  readonly decisionId: string;
  readonly mode: Mode;
  readonly facts: RequestFacts | undefined;
}

// protobufjs accepts plain objects shaped like the message (camelCase field names).
export type CheckResponseObject = Record<string, unknown>;

export function buildResponse(decision: Decision, ctx: ResponseContext): CheckResponseObject {
  if (decision.allowed) return allowResponse(decision.identity, undefined, ctx);
  if (ctx.mode === 'dry-run') return allowResponse(undefined, decision.reason, ctx);
  return denyResponse(decision.reason, decision.partial, ctx);
}

function allowResponse(
  identity: Identity | undefined,
  dryRunReason: Reason | undefined,
  ctx: ResponseContext,
): CheckResponseObject {
  const set: [string, string][] = [];
  if (identity !== undefined) {
    set.push(
      ['x-agent-id', identity.agentId],
      ['x-agent-tenant', identity.tenant],
      ['x-agent-role', identity.role],
      ['x-agent-identity-method', identity.method],
    );
  }
  set.push(['x-agent-authz-decision-id', ctx.decisionId]);
  if (dryRunReason !== undefined) set.push(['x-agent-authz-dry-run-reason', dryRunReason]);
  const remove = headersToRemove(
    ctx.facts,
    set.map(([k]) => k),
  );
  return {
    status: { code: 0 },
    okResponse: {
      headers: set.map(([key, value]) => header(key, value)),
      headersToRemove: remove,
    },
    dynamicMetadata: metadata(
      identity,
      dryRunReason ?? 'allowed',
      ctx,
      identity !== undefined || dryRunReason === undefined ? 'allow' : 'deny',
    ),
  };
}

/**
 * What an allow strips: credentials always, and every inbound x-agent-* header (or underscore
 * spelling, which some upstream frameworks normalise to dashes) that agent-authz does not set
 * itself. A header that is set is never also removed (Envoy applies removals last).
 */
export function headersToRemove(
  facts: RequestFacts | undefined,
  setNames: readonly string[],
): string[] {
  const always = STRIP_ALWAYS.filter((n) => !setNames.includes(n));
  const extra = extraRemovals(facts, setNames);
  return extra === undefined ? always : [...always, ...extra];
}

/**
 * The headers an allow strips besides STRIP_ALWAYS, in request order: stray x-agent-* headers and
 * underscore spellings. Usually none, and then nothing is allocated (the response encoder keys its
 * templates on these on every check).
 */
export function extraRemovals(
  facts: RequestFacts | undefined,
  setNames: readonly string[],
): string[] | undefined {
  if (facts === undefined) return undefined;
  let out: string[] | undefined;
  for (const name of facts.headers.keys()) {
    if (isAlwaysStripped(name) || setNames.includes(name)) continue;
    if (isIdentitySpelling(name)) (out ??= []).push(name);
  }
  return out;
}

/** The header names an allow sets (with an identity), or a dry-run allow of a would-be deny. */
export function allowSetNames(withIdentity: boolean): readonly string[] {
  return withIdentity ? ALLOW_NAMES : DRY_RUN_NAMES;
}
const ALLOW_NAMES: readonly string[] = SET_HEADERS.slice(0, 5);
const DRY_RUN_NAMES: readonly string[] = SET_HEADERS.slice(4);

function denyResponse(
  reason: Reason,
  partial: Partial<Identity> | undefined,
  ctx: ResponseContext,
): CheckResponseObject {
  const info = REASONS[reason];
  const body = JSON.stringify({ error: info.message, reason, decision_id: ctx.decisionId });
  const headers = [
    header('content-type', 'application/json'),
    header('x-agent-authz-reason', reason),
    header('x-agent-authz-decision-id', ctx.decisionId),
  ];
  if (info.http === 503) headers.push(header('retry-after', '1'));
  return {
    status: { code: info.grpc, message: reason },
    deniedResponse: { status: { code: info.http }, headers, body },
    dynamicMetadata: metadata(partial, reason, ctx, 'deny'),
  };
}

function header(key: string, value: string) {
  return {
    header: { key, value },
    append: { value: false },
    appendAction: OVERWRITE_IF_EXISTS_OR_ADD,
  };
}

function metadata(
  identity: Partial<Identity> | undefined,
  reason: Reason,
  ctx: ResponseContext,
  decision: 'allow' | 'deny',
) {
  const fields: Record<string, { stringValue: string }> = {
    decision_id: { stringValue: ctx.decisionId },
    decision: { stringValue: decision },
    reason: { stringValue: reason },
    mode: { stringValue: ctx.mode },
  };
  if (identity?.agentId !== undefined) fields.agent_id = { stringValue: identity.agentId };
  if (identity?.tenant !== undefined) fields.tenant = { stringValue: identity.tenant };
  if (identity?.role !== undefined) fields.role = { stringValue: identity.role };
  if (identity?.method !== undefined) fields.identity_method = { stringValue: identity.method };
  return { fields };
}
