// Turns a decision into Envoy's CheckResponse (the only module besides the decoder that knows the
// proto shape). Allow overwrites the identity headers and strips credentials and stray x-agent-*
// headers; deny carries the HTTP status, a reason header and a JSON body. No header is ever both
// set and removed, because Envoy applies removals last.
import type { Decision, Identity } from './decision.js';
import type { RequestFacts } from './facts.js';
import { REASONS, type Reason } from './reasons.js';

const OVERWRITE_IF_EXISTS_OR_ADD = 2;

export const SET_HEADERS = [
  'x-agent-id',
  'x-agent-tenant',
  'x-agent-role',
  'x-agent-identity-method',
  'x-agent-authz-decision-id',
  'x-agent-authz-dry-run-reason',
] as const;

/** Credentials never travel upstream (secrets) and neither do spoofable identity claims. */
const STRIP_ALWAYS = [
  'x-api-key',
  'x-agent-token',
  'x-spiffe-id',
  'x-client-cert-fingerprint',
  'x-client-cert-san',
  'client-cert',
  'client-cert-chain',
];

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
  const setNames = new Set(set.map(([k]) => k));
  const remove = new Set<string>();
  for (const h of STRIP_ALWAYS) remove.add(h);
  for (const name of ctx.facts?.headers.keys() ?? []) {
    // Any other inbound x-agent-* header is an unverified claim; so are underscore spellings that
    // some upstream frameworks normalise to dashes.
    const dashed = name.replaceAll('_', '-');
    if (dashed.startsWith('x-agent-') && !setNames.has(name)) remove.add(name);
    if (dashed !== name && STRIP_ALWAYS.includes(dashed)) remove.add(name);
  }
  for (const n of setNames) remove.delete(n);
  return {
    status: { code: 0 },
    okResponse: {
      headers: set.map(([key, value]) => header(key, value)),
      headersToRemove: [...remove],
    },
    dynamicMetadata: metadata(
      identity,
      dryRunReason ?? 'allowed',
      ctx,
      identity !== undefined || dryRunReason === undefined ? 'allow' : 'deny',
    ),
  };
}

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
