// The pipeline decides synchronously when every answer is at hand (cache hits), and the same
// decision — or the same failure — arrives as a promise when any read has to wait.
import { describe, expect, it } from 'vitest';
import { Pipeline } from '../../../src/check/pipeline.js';
import type { CredentialVerifier } from '../../../src/credentials/credential.js';
import type { Agent, Tenant } from '../../../src/registry/records.js';
import {
  RegistryUnavailableError,
  type AgentLookup,
  type RegistryReader,
} from '../../../src/registry/registry.js';
import { makeFacts } from '../../helpers/facts.js';

const ID = 'spiffe://example.org/agents/alpha';
const alpha: Agent = {
  agent_id: 'alpha',
  tenant: 'acme',
  agent_role: 'reader',
  status: 'approved',
  spiffe_id: ID,
} as Agent;
const acme: Tenant = { tenant_id: 'acme', require_agent_id: false } as Tenant;

const spiffe = (later = false): CredentialVerifier => ({
  kind: 'spiffe',
  verify: (facts) => {
    const r = {
      status: 'verified' as const,
      method: 'spiffe' as const,
      lookup: { by: 'spiffe', value: facts.sourcePrincipal } as AgentLookup,
      credentialRef: facts.sourcePrincipal,
    };
    return later ? Promise.resolve(r) : r;
  },
});

/** A registry whose answers are values, promises, or failures, as each test needs. */
function registry(o: {
  agentLater?: boolean;
  tenantLater?: boolean;
  tenantFails?: unknown;
  verifierLater?: boolean;
}) {
  return {
    findAgent: (l: AgentLookup) => {
      const a = l.by === 'spiffe' && l.value === ID ? alpha : undefined;
      return o.agentLater === true ? Promise.resolve(a) : a;
    },
    getKey: () => undefined,
    getTenant: () => {
      if (o.tenantFails !== undefined) return Promise.reject(o.tenantFails);
      return o.tenantLater === true ? Promise.resolve(acme) : acme;
    },
  } satisfies RegistryReader;
}

const facts = makeFacts({ sourcePrincipal: ID });
const allowAlpha = {
  allowed: true,
  identity: {
    agentId: 'alpha',
    tenant: 'acme',
    role: 'reader',
    method: 'spiffe',
    credentialRef: ID,
  },
};

describe('Pipeline.decide', () => {
  it('answers synchronously when the verifier and every registry read answer at once', () => {
    const p = new Pipeline({
      verifiers: [spiffe()],
      registry: registry({}),
      requireAgentId: false,
    });
    const d = p.decide(facts);
    expect(d).not.toBeInstanceOf(Promise);
    expect(d).toEqual(allowAlpha);
  });

  it.each([
    ['the verifier', { verifierLater: true }],
    ['the agent read', { agentLater: true }],
    ['the tenant read', { tenantLater: true }],
  ])('gives the same decision as a promise when %s has to wait', async (_what, o) => {
    const p = new Pipeline({
      verifiers: [spiffe('verifierLater' in o)],
      registry: registry(o),
      requireAgentId: false,
    });
    const d = p.decide(facts);
    expect(d).toBeInstanceOf(Promise);
    expect(await d).toEqual(allowAlpha);
  });

  it('denies registry_unavailable when a read that had to wait fails that way', async () => {
    const p = new Pipeline({
      verifiers: [spiffe()],
      registry: registry({ agentLater: true, tenantFails: new RegistryUnavailableError('down') }),
      requireAgentId: false,
    });
    expect(await p.decide(facts)).toEqual({ allowed: false, reason: 'registry_unavailable' });
  });

  it('passes any other failure on (the handler turns it into internal_error)', async () => {
    const p = new Pipeline({
      verifiers: [spiffe()],
      registry: registry({ tenantFails: new TypeError('bug') }),
      requireAgentId: false,
    });
    await expect(p.decide(facts)).rejects.toThrow('bug');
    const sync = new Pipeline({
      verifiers: [
        {
          kind: 'spiffe',
          verify: () => {
            throw new RegistryUnavailableError('down');
          },
        },
      ],
      registry: registry({}),
      requireAgentId: false,
    });
    expect(sync.decide(facts)).toEqual({ allowed: false, reason: 'registry_unavailable' });
  });
});
