// The one code path for registry administration: the admin HTTP router and the CLI both call
// these services, so validation, status rules, conflict handling and auditing cannot diverge.
import type { Auditor } from '../audit/types.js';
import type { RegistryStore } from '../registry/registry.js';
import { AgentService } from './agent-service.js';
import { KeyService } from './key-service.js';
import type { ServiceContext } from './service-context.js';
import { TenantService } from './tenant-service.js';

export class RegistryService {
  readonly agents: AgentService;
  readonly keys: KeyService;
  readonly tenants: TenantService;

  constructor(store: RegistryStore, auditor?: Auditor, now?: () => Date) {
    const ctx: ServiceContext = { store, auditor, now };
    this.agents = new AgentService(ctx);
    this.keys = new KeyService(ctx);
    this.tenants = new TenantService(ctx);
  }
}

export type { Actor } from './service-context.js';
