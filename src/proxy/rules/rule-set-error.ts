// What is wrong with a rule-set file, by file and line: a set that does not
// load keeps the last good one, and this is what the log says about it.

export interface RuleSetProblem {
  line: number;
  message: string;
}

/** At most this many problems are listed: a file of garbage says enough by then. */
export const MAX_PROBLEMS = 5;

export class RuleSetError extends Error {
  constructor(
    readonly file: string,
    readonly problems: readonly RuleSetProblem[],
    /** More problems than were kept. */
    readonly more = 0,
  ) {
    const list = problems.map((p) => `${file}:${p.line}: ${p.message}`).join('; ');
    super(more > 0 ? `${list}; and ${more} more` : list);
    this.name = 'RuleSetError';
  }

  /** The first problem: what a one-line log field holds. */
  get first(): RuleSetProblem {
    return this.problems[0];
  }
}

/** Collects problems while a file is read; throws them all at the end. */
export class ProblemList {
  private readonly list: RuleSetProblem[] = [];
  private extra = 0;

  add(line: number, message: string): void {
    if (this.list.length < MAX_PROBLEMS) this.list.push({ line, message });
    else this.extra++;
  }

  get empty(): boolean {
    return this.list.length === 0;
  }

  throwIfAny(file: string): void {
    if (this.list.length) throw new RuleSetError(file, this.list, this.extra);
  }
}
