import { SEVERITY_MAX, SEVERITY_MIN, SEVERITY_WILDCARD } from "../severity.ts";
import { type ClientMatch, type Matcher, NO_MATCHES, type Rule, WILDCARD } from "./types.ts";

/**
 * The production matcher. Rules are compiled once into one index per wildcard pattern (which of severity,
 * source, name are concrete: 7 patterns, since no rule is `*` on all three). Each index maps the concrete
 * fields to a ready-made list of per-client groups (immutable by type, not frozen: Object.freeze measured
 * 2.6x slower compiles and 3.5x slower matching in JSC, whose frozen arrays leave the fast storage), so matching an alert is at most 8 Map lookups
 * and, when one pattern hits, returns that list as is. Only alerts hit by several patterns pay for a merge.
 *
 * Severity is an array index (it has 4 values); source and name are nested Maps rather than one Map on a
 * composite string key: nested lookups measured ~3x faster, since no key string is built per alert.
 */
export class CompiledMatcher implements Matcher {
  // Named by their concrete fields; undefined when no rule has that pattern, so it costs nothing at match time.
  private readonly severitySourceName?: BySeverity<Keyed<Keyed<Groups>>>;
  private readonly severitySource?: BySeverity<Keyed<Groups>>;
  private readonly severityName?: BySeverity<Keyed<Groups>>;
  private readonly severityOnly?: BySeverity<Groups>;
  private readonly sourceName?: Keyed<Keyed<Groups>>;
  private readonly sourceOnly?: Keyed<Groups>;
  private readonly nameOnly?: Keyed<Groups>;
  /** Scratch space for the hits of one match() call. */
  private readonly hits: Groups[] = [];

  constructor(rules: readonly Rule[]) {
    const build = collectRuleIndices(rules);
    const groups = (indices: number[]) => groupByClient(rules, indices);
    const keyed = (map: Keyed<number[]>) => mapValues(map, groups);
    const keyedTwice = (map: Keyed<Keyed<number[]>>) => mapValues(map, keyed);
    // An array indexed by severity is empty exactly when no rule filled a slot.
    if (build.severitySourceName.length > 0)
      this.severitySourceName = bySeverity(build.severitySourceName, keyedTwice);
    if (build.severitySource.length > 0) this.severitySource = bySeverity(build.severitySource, keyed);
    if (build.severityName.length > 0) this.severityName = bySeverity(build.severityName, keyed);
    if (build.severityOnly.length > 0) this.severityOnly = bySeverity(build.severityOnly, groups);
    if (build.sourceName.size > 0) this.sourceName = keyedTwice(build.sourceName);
    if (build.sourceOnly.size > 0) this.sourceOnly = keyed(build.sourceOnly);
    if (build.nameOnly.size > 0) this.nameOnly = keyed(build.nameOnly);
  }

  match(severity: number, source: string, name: string): readonly ClientMatch[] {
    const hits = this.hits;
    let count = 0;
    let hit: Groups | undefined;
    // An alert severity outside 1..4 can only match rules with a wildcard severity.
    if (severity >= SEVERITY_MIN && severity <= SEVERITY_MAX) {
      if (this.severitySourceName !== undefined) {
        hit = this.severitySourceName[severity]?.get(source)?.get(name);
        if (hit !== undefined) hits[count++] = hit;
      }
      if (this.severitySource !== undefined) {
        hit = this.severitySource[severity]?.get(source);
        if (hit !== undefined) hits[count++] = hit;
      }
      if (this.severityName !== undefined) {
        hit = this.severityName[severity]?.get(name);
        if (hit !== undefined) hits[count++] = hit;
      }
      if (this.severityOnly !== undefined) {
        hit = this.severityOnly[severity];
        if (hit !== undefined) hits[count++] = hit;
      }
    }
    if (this.sourceName !== undefined) {
      hit = this.sourceName.get(source)?.get(name);
      if (hit !== undefined) hits[count++] = hit;
    }
    if (this.sourceOnly !== undefined) {
      hit = this.sourceOnly.get(source);
      if (hit !== undefined) hits[count++] = hit;
    }
    if (this.nameOnly !== undefined) {
      hit = this.nameOnly.get(name);
      if (hit !== undefined) hits[count++] = hit;
    }
    if (count === 0) return NO_MATCHES;
    if (count === 1) return hits[0] as Groups;
    return mergeGroups(hits, count);
  }
}

type Keyed<T> = Map<string, T>;
/** Indexed by severity number; index 0 is unused. */
type BySeverity<T> = readonly (T | undefined)[];
/** Per-client groups of one index entry: each client once. */
type Groups = readonly ClientMatch[];

/** First compile pass: the index of every rule, filed under its pattern and concrete fields. */
function collectRuleIndices(rules: readonly Rule[]) {
  const build = {
    severitySourceName: [] as Keyed<Keyed<number[]>>[],
    severitySource: [] as Keyed<number[]>[],
    severityName: [] as Keyed<number[]>[],
    severityOnly: [] as number[][],
    sourceName: new Map<string, Keyed<number[]>>(),
    sourceOnly: new Map<string, number[]>(),
    nameOnly: new Map<string, number[]>(),
  };
  for (let i = 0; i < rules.length; i++) {
    const { severity, source, name } = rules[i] as Rule;
    const hasSeverity = severity !== SEVERITY_WILDCARD;
    const hasSource = source !== WILDCARD;
    const hasName = name !== WILDCARD;
    if (
      hasSeverity &&
      !(Number.isInteger(severity) && severity >= SEVERITY_MIN && severity <= SEVERITY_MAX)
    ) {
      throw new RangeError(`rule ${i}: severity ${severity} is not 0..4`);
    }
    let indices: number[];
    if (hasSeverity && hasSource && hasName) {
      indices = list(child(mapAt(build.severitySourceName, severity), source), name);
    } else if (hasSeverity && hasSource) {
      indices = list(mapAt(build.severitySource, severity), source);
    } else if (hasSeverity && hasName) {
      indices = list(mapAt(build.severityName, severity), name);
    } else if (hasSeverity) {
      indices = build.severityOnly[severity] ?? [];
      build.severityOnly[severity] = indices;
    } else if (hasSource && hasName) {
      indices = list(child(build.sourceName, source), name);
    } else if (hasSource) {
      indices = list(build.sourceOnly, source);
    } else if (hasName) {
      indices = list(build.nameOnly, name);
    } else {
      throw new RangeError(`rule ${i}: a rule cannot be * on severity, source and name`);
    }
    indices.push(i);
  }
  return build;
}

function mapAt<V>(bySeverity: Keyed<V>[], severity: number): Keyed<V> {
  let map = bySeverity[severity];
  if (map === undefined) {
    map = new Map();
    bySeverity[severity] = map;
  }
  return map;
}

function child<V>(parent: Keyed<Keyed<V>>, key: string): Keyed<V> {
  let map = parent.get(key);
  if (map === undefined) {
    map = new Map();
    parent.set(key, map);
  }
  return map;
}

function list(parent: Keyed<number[]>, key: string): number[] {
  let indices = parent.get(key);
  if (indices === undefined) {
    indices = [];
    parent.set(key, indices);
  }
  return indices;
}

function mapValues<A, B>(source: Map<string, A>, convert: (value: A) => B): Map<string, B> {
  const result = new Map<string, B>();
  for (const [key, value] of source) result.set(key, convert(value));
  return result;
}

function bySeverity<A, B>(source: readonly (A | undefined)[], convert: (value: A) => B): BySeverity<B> {
  const result: (B | undefined)[] = [undefined, undefined, undefined, undefined, undefined];
  source.forEach((value, severity) => {
    if (value !== undefined) result[severity] = convert(value);
  });
  return result;
}

/** Reused across groupByClient calls: compile is synchronous, so one scratch Map is enough. */
const scratchByClient = new Map<string, string[]>();

function groupByClient(rules: readonly Rule[], indices: readonly number[]): Groups {
  if (indices.length === 1) {
    const rule = rules[indices[0] as number] as Rule;
    return [{ clientId: rule.clientId, ruleIds: [rule.ruleId] }];
  }
  for (const index of indices) {
    const rule = rules[index] as Rule;
    const ruleIds = scratchByClient.get(rule.clientId);
    if (ruleIds === undefined) scratchByClient.set(rule.clientId, [rule.ruleId]);
    else ruleIds.push(rule.ruleId);
  }
  const groups = Array.from(scratchByClient, ([clientId, ruleIds]) => ({ clientId, ruleIds }));
  scratchByClient.clear();
  return groups;
}

function mergeGroups(hits: readonly Groups[], count: number): ClientMatch[] {
  const byClient = new Map<string, string[]>();
  for (let i = 0; i < count; i++) {
    for (const { clientId, ruleIds } of hits[i] as Groups) {
      const merged = byClient.get(clientId);
      if (merged === undefined) byClient.set(clientId, ruleIds.slice());
      else merged.push(...ruleIds);
    }
  }
  return Array.from(byClient, ([clientId, ruleIds]) => ({ clientId, ruleIds }));
}
