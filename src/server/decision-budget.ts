// The decision budget: a check still undecided when its time is up is answered decision_timeout, so
// Envoy gets a deny before its own timeout (and failure_mode_allow) ever applies.
import { deny, type Decision } from '../check/decision.js';

function expireUnanswered(due: readonly Waiter[]): void {
  for (const w of due) {
    if (w.settled) continue;
    w.settled = true;
    w.expire();
  }
}

interface Waiter {
  readonly deadline: number;
  /** Answered (or expired): the sweep drops it without calling expire(). */
  settled: boolean;
  expire(): void;
}

/**
 * The decision budget with one coarse timer for every check in flight, instead of a setTimeout,
 * a clearTimeout and a Promise.race per request (they showed in cache-hit profiles). A check that
 * overruns gets decision_timeout between budgetMs and budgetMs + one tick (then one socket poll,
 * see sweep); the tick is a tenth of the budget (at most 15 ms), so with the 150 ms budget the
 * deny still beats Envoy's 200 ms default.
 * Waiters sit in an array in deadline order (every waiter gets the same budget); answered ones are
 * only marked, so a check allocates no hash-table churn (a Set's delete showed in heap profiles).
 */
export class DecisionBudget {
  private waiting: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly tickMs: number;

  constructor(private readonly budgetMs: number) {
    this.tickMs = Math.max(1, Math.min(15, Math.floor(budgetMs / 10)));
  }

  race(decision: Promise<Decision>, startedMs: number): Promise<Decision> {
    return new Promise<Decision>((resolve, reject) => {
      const w: Waiter = {
        deadline: startedMs + this.budgetMs,
        settled: false,
        expire: () => resolve(deny('decision_timeout')),
      };
      this.waiting.push(w);
      if (this.timer === undefined) {
        this.timer = setInterval(() => this.sweep(), this.tickMs);
        this.timer.unref();
      }
      decision.then(
        (d) => {
          w.settled = true;
          resolve(d);
        },
        (err: unknown) => {
          w.settled = true;
          reject(err);
        },
      );
    });
  }

  /** Waiters still held (answered ones before the first pending one are let go each tick). */
  get held(): number {
    return this.waiting.length;
  }

  private sweep(): void {
    const now = performance.now();
    const q = this.waiting;
    let due: Waiter[] | undefined;
    let i = 0;
    for (; i < q.length; i++) {
      const w = q[i]!;
      if (w.settled) continue;
      if (w.deadline > now) break;
      (due ??= []).push(w);
    }
    // Due checks are timed out after the next socket poll, not now: timers run before Node reads
    // its sockets, so after a stall of this process the answer a check waited for (a Redis reply,
    // a JWKS response) may already be there, unread. Denying it anyway would turn our own pause
    // into decision_timeouts for checks whose answers had arrived in time.
    if (due !== undefined) setImmediate(expireUnanswered, due);
    // Settled waiters behind the first pending one stay until it is answered or expires. Those
    // before it are let go on every tick: a waiter holds its check's promise and decision, and
    // keeping answered ones until a thousand had piled up (half a second at 2 000 checks/s) made
    // them outlive young-generation collections — most of what a cache miss got promoted.
    if (i === q.length) {
      this.waiting = [];
      clearInterval(this.timer);
      this.timer = undefined;
    } else if (i > 0) {
      this.waiting = q.slice(i);
    }
  }
}
