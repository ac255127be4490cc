/** A subscription rule as the matchers see it. Rule ids are unique; ids are UUID text. */
export interface Rule {
  readonly ruleId: string;
  readonly clientId: string;
  /** 1..4, or SEVERITY_WILDCARD (0) for `*`. */
  readonly severity: number;
  /** Exact value, or `*`. */
  readonly source: string;
  /** Exact value, or `*`. */
  readonly name: string;
}

/** One `alerts.matched` record to emit: a client and every one of its rules that matched. */
export interface ClientMatch {
  readonly clientId: string;
  readonly ruleIds: readonly string[];
}

export interface Matcher {
  /**
   * The clients whose rules match the alert, each client once. The result may be shared with later
   * calls: never mutate it (the types say readonly; it is not frozen, for speed).
   */
  match(severity: number, source: string, name: string): readonly ClientMatch[];
}

export const WILDCARD = "*";

/** Returned for every unmatched alert, so that a miss allocates nothing. */
export const NO_MATCHES: readonly ClientMatch[] = Object.freeze([]);

/** A shared scope granted to a client: alerts of scope `shared:<scope>` may match that client's rules. */
export interface Grant {
  /** The shared scope's name (without `shared:`). */
  readonly scope: string;
  readonly clientId: string;
}
