// The decision pipeline: facts → credentials (in priority order) → registry → the seven-step
// enforcement sequence of seed 000. Pure apart from registry and identity-provider reads: no
// metrics, audit or protobuf here; the handler records those once, after the decision.
import type { ApiKey, Agent, Tenant } from '../registry/records.js';
import { agentRoles } from '../registry/records.js';
import { RegistryUnavailableError, type RegistryReader } from '../registry/registry.js';
import type { CredentialVerifier } from '../credentials/credential.js';
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

  async decide(facts: RequestFacts): Promise<Decision> {
    try {
      return await this.run(facts);
    } catch (err) {
      if (err instanceof RegistryUnavailableError) return deny('registry_unavailable');
      throw err;
    }
  }

  private async run(facts: RequestFacts): Promise<Decision> {
    if (!headersAreClean(facts)) return deny('malformed_header');
    const nowMs = this.now();
    const claimedId = facts.headers.get('x-agent-id');
    const requestedRole = facts.headers.get('x-agent-role');
    let sawCredential = false;

    for (const v of this.opts.verifiers) {
      // Most verifiers answer synchronously (JWT too, on a token-cache hit): no await for those.
      const pending = v.verify(facts, nowMs);
      const r = pending instanceof Promise ? await pending : pending;
      if (r.status === 'absent') continue;
      sawCredential = true;
      if (r.status === 'invalid' || r.status === 'unavailable') return deny(r.reason);
      if (r.status === 'api_key') return this.enforceKey(r.key, claimedId, requestedRole);
      const agent = await this.opts.registry.findAgent(r.lookup);
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
      return this.enforce(
        { agent, method: r.method, credentialRef: r.credentialRef },
        claimedId,
        requestedRole,
      );
    }
    return deny(sawCredential ? 'agent_not_registered' : 'no_credentials');
  }

  private async enforceKey(
    key: ApiKey,
    claimedId: string | undefined,
    requestedRole: string | undefined,
  ): Promise<Decision> {
    const partial = { tenant: key.tenant, credentialRef: key.key_id };
    const tenant = await this.opts.registry.getTenant(key.tenant);
    // 1. agent id required (globally or by the key's tenant)
    if (claimedId === undefined && this.requires(tenant)) return deny('agent_id_required', partial);
    // An unbound key without x-agent-id names no agent at all.
    const agentId = claimedId ?? key.bound_agent_id;
    if (agentId === undefined) return deny('agent_id_required', partial);
    // 2. key → agent binding
    if (key.bound_agent_id !== undefined && key.bound_agent_id !== agentId)
      return deny('key_agent_binding', { ...partial, agentId });
    const found = await this.opts.registry.findAgent({ by: 'id', value: agentId });
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

  private async enforce(
    id: Identified,
    claimedId: string | undefined,
    requestedRole: string | undefined,
  ): Promise<Decision> {
    const tenant = await this.opts.registry.getTenant(id.agent.tenant);
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
