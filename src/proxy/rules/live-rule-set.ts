// A named rule-set as the compiled rules hold it: its contents swap in one
// assignment when its file is read again, so a lookup sees the old set or the
// new one, never a mix, and the rules need not be compiled again.
import type { OwnerNeed, RuleSetMatcher } from './rule-types.js';
import type { RuleSet } from './rule-set.js';
import type { SetQuery } from './set-query.js';

export class LiveRuleSet implements RuleSetMatcher {
  private set: RuleSet;
  /** Bumped by each swap: whoever derived something from `needs` knows to look again. */
  generation = 0;
  loadedAt = Date.now();

  constructor(
    readonly name: string,
    readonly path: string,
    first: RuleSet,
    /** As the config gave it; undefined: from the file's name and first bytes. */
    readonly format?: 'text' | 'sing-box',
    /**
     * The text `first` was compiled from, kept (and kept current by swap) only
     * where stack workers compile their own copies from it; null: not kept.
     */
    private source: string | null = null,
  ) {
    this.set = first;
  }

  /** The text the current set was compiled from; null unless kept (see the constructor). */
  get text(): string | null {
    return this.source;
  }

  get current(): RuleSet {
    return this.set;
  }

  get needs(): { names: boolean; owner: OwnerNeed } {
    return this.set.needs;
  }

  matches(q: SetQuery): boolean {
    return this.set.matches(q);
  }

  swap(next: RuleSet, text?: string): void {
    this.set = next;
    if (this.source !== null && text !== undefined) this.source = text;
    this.generation++;
    this.loadedAt = Date.now();
  }
}
