import { SEVERITY_WILDCARD } from "../severity.ts";
import { type ClientMatch, type Matcher, NO_MATCHES, type Rule, WILDCARD } from "./types.ts";

/** The rule semantics written as plainly as possible; the compiled matcher is tested against it. */
export class ReferenceMatcher implements Matcher {
  constructor(private readonly rules: readonly Rule[]) {}

  match(severity: number, source: string, name: string): readonly ClientMatch[] {
    const byClient = new Map<string, string[]>();
    for (const rule of this.rules) {
      const matches =
        (rule.severity === SEVERITY_WILDCARD || rule.severity === severity) &&
        (rule.source === WILDCARD || rule.source === source) &&
        (rule.name === WILDCARD || rule.name === name);
      if (!matches) continue;
      const ruleIds = byClient.get(rule.clientId);
      if (ruleIds === undefined) byClient.set(rule.clientId, [rule.ruleId]);
      else ruleIds.push(rule.ruleId);
    }
    if (byClient.size === 0) return NO_MATCHES;
    return Array.from(byClient, ([clientId, ruleIds]) => ({ clientId, ruleIds }));
  }
}
