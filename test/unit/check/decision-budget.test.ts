// The decision budget: answers that come in time pass through, late ones become decision_timeout,
// and the waiters it keeps in deadline order never hold an answered check back.
import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { deny, type Decision } from '../../../src/check/decision.js';
import { DecisionBudget } from '../../../src/server/decision-budget.js';

const never = new Promise<Decision>(() => undefined);

/** Holds the event loop for `ms`, as a GC pause or a burst of queued requests would. */
function stall(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}
const after = (ms: number, d: Decision) =>
  new Promise<Decision>((resolve) => setTimeout(() => resolve(d), ms));

describe('DecisionBudget', () => {
  it('passes an answer that arrives in time through unchanged', async () => {
    const budget = new DecisionBudget(50);
    const d = deny('agent_not_registered');
    await expect(budget.race(after(5, d), performance.now())).resolves.toBe(d);
  });

  it('turns a check that never answers into decision_timeout', async () => {
    const budget = new DecisionBudget(30);
    const r = await budget.race(never, performance.now());
    expect(r).toMatchObject({ allowed: false, reason: 'decision_timeout' });
  });

  it('keeps timing out stuck checks among many answered ones, and passes rejections on', async () => {
    const budget = new DecisionBudget(40);
    const answered: Promise<Decision>[] = [];
    const stuck: Promise<Decision>[] = [];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 1500; i++)
        answered.push(budget.race(Promise.resolve(deny('overloaded')), performance.now()));
      stuck.push(budget.race(never, performance.now()));
      await after(15, deny('overloaded'));
    }
    const failing = budget.race(Promise.reject(new Error('boom')), performance.now());
    await expect(failing).rejects.toThrow('boom');
    for (const r of await Promise.all(answered)) expect(r).toMatchObject({ reason: 'overloaded' });
    for (const r of await Promise.all(stuck))
      expect(r).toMatchObject({ reason: 'decision_timeout' });
    // After everything settled, a new stuck check still times out (the timer restarts).
    await expect(budget.race(never, performance.now())).resolves.toMatchObject({
      reason: 'decision_timeout',
    });
  });

  it('lets go of answered checks on the next tick, not after a thousand have piled up', async () => {
    const budget = new DecisionBudget(150); // 15 ms tick
    const answered = Array.from({ length: 200 }, () =>
      budget.race(Promise.resolve(deny('overloaded')), performance.now()),
    );
    const stuck = budget.race(never, performance.now());
    await Promise.all(answered);
    expect(budget.held).toBe(201);
    await after(40, deny('overloaded'));
    // Only the pending check is still held: the 200 answered before it are gone.
    expect(budget.held).toBe(1);
    await expect(stuck).resolves.toMatchObject({ reason: 'decision_timeout' });
    await after(40, deny('overloaded'));
    expect(budget.held).toBe(0);
  });

  it('after a stall of the process, an answer already in a socket wins over the expired budget', async () => {
    // The answer travels over a real loopback socket, so it is read in the event loop's poll phase,
    // which Node reaches only after running the timers that came due during the stall.
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    const client = connect(port, '127.0.0.1');
    await once(client, 'connect');
    const [peer] = await accepted;
    try {
      const budget = new DecisionBudget(30); // 3 ms tick
      const d = deny('agent_not_registered');
      const answer = new Promise<Decision>((resolve) => client.once('data', () => resolve(d)));
      const raced = budget.race(answer, performance.now());
      const stuck = budget.race(never, performance.now());
      peer.write('x'); // in the client's receive buffer within microseconds
      stall(120); // the budget and its tick both pass while nothing runs
      await expect(raced).resolves.toBe(d);
      await expect(stuck).resolves.toMatchObject({ reason: 'decision_timeout' });
    } finally {
      client.destroy();
      peer.destroy();
      server.close();
    }
  });
});
