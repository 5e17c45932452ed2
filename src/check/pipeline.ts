// The decision pipeline: facts → credentials (in priority order) → registry → the seven-step
// enforcement sequence of seed 000. Pure apart from registry and identity-provider reads: no
// metrics, audit or protobuf here; the handler records those once, after the decision.
import type { ApiKey, Agent, Tenant } from '../registry/records.js';
import { agentRoles } from '../registry/records.js';
import {
  RegistryUnavailableError,
  type MaybePromise,
  type RegistryReader,
} from '../registry/registry.js';
import type { CredentialResult, CredentialVerifier } from '../credentials/credential.js';
import { deny, type Decision, type IdentityMethod } from './decision.js';
import type { RequestFacts } from './facts.js';
import { headersAreClean } from './header-rules.js';

export interface PipelineOptions {
  /** Credential verifiers in priority order: pki, spiffe, jwt_oidc, conjur, api_key. */
  readonly verifiers: readonly CredentialVerifier[];
  readonly registry: RegistryReader;
  readonly requireAgentId: boolean;
  readonly now?: () => number;
}

interface Identified {
  readonly agent: Agent;
  readonly method: IdentityMethod;
  readonly credentialRef: string;
  readonly key?: ApiKey;
}

export class Pipeline {
  private readonly now: () => number;

  constructor(private readonly opts: PipelineOptions) {
    this.now = opts.now ?? Date.now;
  }

  /**
   * The decision, synchronously when every credential check and registry read could answer at
   * once (a cache hit, the common case), otherwise as a promise. The steps are a generator that
   * yields each verifier's or registry's answer; settle() resumes it without a promise or a
   * microtask for answers already at hand.
   */
  decide(facts: RequestFacts): MaybePromise<Decision> {
    let out: MaybePromise<Decision>;
    try {
      out = settle(this.run(facts));
    } catch (err) {
      return registryDown(err);
    }
    return out instanceof Promise ? out.catch(registryDown) : out;
  }

  private *run(facts: RequestFacts): Steps {
    if (!headersAreClean(facts)) return deny('malformed_header');
    const nowMs = this.now();
    const claimedId = facts.headers.get('x-agent-id');
    const requestedRole = facts.headers.get('x-agent-role');
    let sawCredential = false;

    for (const v of this.opts.verifiers) {
      // Most verifiers answer synchronously (JWT too, on a token-cache hit).
      const r = (yield v.verify(facts, nowMs)) as CredentialResult;
      if (r.status === 'absent') continue;
      sawCredential = true;
      if (r.status === 'invalid' || r.status === 'unavailable') return deny(r.reason);
      if (r.status === 'api_key') return yield* this.enforceKey(r.key, claimedId, requestedRole);
      const agent = (yield this.opts.registry.findAgent(r.lookup)) as Agent | undefined;
      // Valid but not registered: a weaker credential in the same request may still identify.
      if (agent === undefined) continue;
      // Registered, but this credential is retired (a previous certificate past its grace
      // deadline): deny here, or the same certificate's SPIFFE ID would let it back in.
      if (r.accept !== undefined && !r.accept(agent, nowMs))
        return deny('certificate_retired', {
          agentId: agent.agent_id,
          tenant: agent.tenant,
          method: r.method,
        });
      if (claimedId !== undefined && claimedId !== agent.agent_id)
        return deny('agent_id_mismatch', {
          agentId: agent.agent_id,
          tenant: agent.tenant,
          method: r.method,
        });
      return yield* this.enforce(
        { agent, method: r.method, credentialRef: r.credentialRef },
        claimedId,
        requestedRole,
      );
    }
    return deny(sawCredential ? 'agent_not_registered' : 'no_credentials');
  }

  private *enforceKey(
    key: ApiKey,
    claimedId: string | undefined,
    requestedRole: string | undefined,
  ): Steps {
    const partial = { tenant: key.tenant, credentialRef: key.key_id };
    const tenant = (yield this.opts.registry.getTenant(key.tenant)) as Tenant | undefined;
    // 1. agent id required (globally or by the key's tenant)
    if (claimedId === undefined && this.requires(tenant)) return deny('agent_id_required', partial);
    // An unbound key without x-agent-id names no agent at all.
    const agentId = claimedId ?? key.bound_agent_id;
    if (agentId === undefined) return deny('agent_id_required', partial);
    // 2. key → agent binding
    if (key.bound_agent_id !== undefined && key.bound_agent_id !== agentId)
      return deny('key_agent_binding', { ...partial, agentId });
    const found = (yield this.opts.registry.findAgent({ by: 'id', value: agentId })) as
      Agent | undefined;
    // The tenant's registry is the key's tenant: an agent of another tenant does not exist here.
    const agent = found !== undefined && found.tenant === key.tenant ? found : undefined;
    const role = requestedRole ?? agent?.agent_role;
    // 3. key role restriction
    if (
      key.permitted_roles !== undefined &&
      role !== undefined &&
      !key.permitted_roles.includes(role)
    )
      return deny('key_role_restriction', { ...partial, agentId, role });
    // 4. registry: exists, approved
    if (agent === undefined) return deny('agent_not_registered', { ...partial, agentId });
    const method: IdentityMethod =
      key.bound_agent_id === agent.agent_id ? 'key_bound' : 'self_declared';
    return this.finish({ agent, method, credentialRef: key.key_id, key }, role!, tenant, true);
  }

  private *enforce(
    id: Identified,
    claimedId: string | undefined,
    requestedRole: string | undefined,
  ): Steps {
    const tenant = (yield this.opts.registry.getTenant(id.agent.tenant)) as Tenant | undefined;
    // 1. agent id required: mesh and token identities must also name themselves when demanded.
    if (claimedId === undefined && this.requires(tenant))
      return deny('agent_id_required', {
        agentId: id.agent.agent_id,
        tenant: id.agent.tenant,
        method: id.method,
      });
    // 2–3 concern API keys only; there is no key on this path.
    return this.finish(id, requestedRole ?? id.agent.agent_role, tenant, false);
  }

  // Steps 4–7, shared by every method.
  private finish(
    id: Identified,
    role: string,
    _tenant: Tenant | undefined,
    viaKey: boolean,
  ): Decision {
    const { agent } = id;
    const partial = {
      agentId: agent.agent_id,
      tenant: agent.tenant,
      role,
      method: id.method,
      credentialRef: id.credentialRef,
    };
    // 4. approved
    if (agent.status !== 'approved') return deny('agent_not_approved', partial);
    // 5. agent role
    if (!agentRoles(agent).includes(role)) return deny('role_not_permitted', partial);
    // 6. agent → key binding: an agent bound to a key accepts no other key.
    if (viaKey && agent.bound_key_id !== undefined && agent.bound_key_id !== id.key?.key_id)
      return deny('key_agent_binding', partial);
    // 7. allow
    return {
      allowed: true,
      identity: {
        agentId: agent.agent_id,
        tenant: agent.tenant,
        role,
        method: id.method,
        credentialRef: id.credentialRef,
      },
    };
  }

  private requires(tenant: Tenant | undefined): boolean {
    return this.opts.requireAgentId || tenant?.require_agent_id === true;
  }
}

/** The pipeline's steps: each yield hands out a value or a promise, and gets back its result. */
type Steps = Generator<unknown, Decision, unknown>;

/** Runs steps synchronously while every yielded value is at hand; async from the first promise. */
function settle(steps: Steps): MaybePromise<Decision> {
  let step = steps.next();
  while (step.done !== true) {
    if (step.value instanceof Promise) return settleLater(steps, step.value);
    step = steps.next(step.value);
  }
  return step.value;
}

async function settleLater(steps: Steps, first: Promise<unknown>): Promise<Decision> {
  let pending: Promise<unknown> = first;
  for (;;) {
    let value: unknown;
    let failed = false;
    try {
      value = await pending;
    } catch (err) {
      value = err;
      failed = true;
    }
    // A rejected read is thrown into the steps at their yield, as an await there would throw.
    let step = failed ? steps.throw(value) : steps.next(value);
    while (step.done !== true && !(step.value instanceof Promise)) step = steps.next(step.value);
    if (step.done === true) return step.value;
    pending = step.value as Promise<unknown>;
  }
}

function registryDown(err: unknown): Decision {
  if (err instanceof RegistryUnavailableError) return deny('registry_unavailable');
  throw err;
}
