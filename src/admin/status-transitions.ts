// The agent status machine. Status changes only through these named actions, never through
// PUT/PATCH, so each one is audited under its own name and `revoked` cannot be undone by an edit.
//
//   approve    pending   → approved
//   suspend    approved  → suspended
//   reinstate  suspended → approved
//   revoke     pending | approved | suspended → revoked   (revoked → revoked is a no-op)
//
// `revoked` is terminal: a revoked identity is re-registered under a new agent_id, so the audit
// trail never shows one agent_id that was revoked and later allowed again.
import type { Agent } from '../registry/records.js';
import { AdminError } from './admin-error.js';

export const STATUS_ACTIONS = ['approve', 'suspend', 'reinstate', 'revoke'] as const;
export type StatusAction = (typeof STATUS_ACTIONS)[number];
type Status = Agent['status'];

const TRANSITIONS: Record<StatusAction, { readonly from: readonly Status[]; readonly to: Status }> =
  {
    approve: { from: ['pending'], to: 'approved' },
    suspend: { from: ['approved'], to: 'suspended' },
    reinstate: { from: ['suspended'], to: 'approved' },
    revoke: { from: ['pending', 'approved', 'suspended'], to: 'revoked' },
  };

export function isStatusAction(s: string): s is StatusAction {
  return (STATUS_ACTIONS as readonly string[]).includes(s);
}

/**
 * The status after `action`, or `undefined` when nothing changes (revoking twice is harmless, so
 * an operator retrying during an incident never sees an error). Throws invalid_transition.
 */
export function nextStatus(current: Status, action: StatusAction): Status | undefined {
  const t = TRANSITIONS[action];
  if (action === 'revoke' && current === 'revoked') return undefined;
  if (!t.from.includes(current)) {
    const hint = action === 'approve' && current === 'suspended' ? '; use reinstate' : '';
    throw new AdminError(
      'invalid_transition',
      `cannot ${action} an agent that is ${current} (allowed from: ${t.from.join(', ')})${hint}`,
    );
  }
  return t.to;
}
