// The process-wide budget for bytes the transport holds on behalf of peers: partial frames, header
// blocks and request bodies read but not yet handled, and answers written but not yet taken by
// the kernel. Over the budget, the connection holding the most is ended, whoever asked last.

export interface BudgetHolder {
  /** Bytes this connection holds now (the budget keeps it up to date). */
  held: number;
  /** Ends the connection at once, releasing what it holds. */
  overBudget(): void;
}

export class MemoryBudget {
  used = 0;

  constructor(
    readonly limit: number,
    private readonly holders: Iterable<BudgetHolder>,
  ) {}

  /** Records `delta` bytes for `holder`; false when `holder` itself was ended to stay within. */
  change(holder: BudgetHolder, delta: number): boolean {
    holder.held += delta;
    this.used += delta;
    if (delta <= 0 || this.used <= this.limit) return true;
    let survived = true;
    while (this.used > this.limit) {
      let largest: BudgetHolder | undefined;
      for (const h of this.holders) if (largest === undefined || h.held > largest.held) largest = h;
      if (largest === undefined || largest.held <= 0) break;
      if (largest === holder) survived = false;
      largest.overBudget();
      if (largest.held > 0) this.release(largest); // overBudget() releases; never loop on it
    }
    return survived;
  }

  release(holder: BudgetHolder): void {
    this.used -= holder.held;
    holder.held = 0;
  }
}
