import { SEVERITY_MAX, SEVERITY_WILDCARD } from "../severity.ts";
import { formatUuid, type Snapshot } from "../snapshot.ts";
import { type ClientMatch, type Matcher, NO_MATCHES, type Rule, WILDCARD } from "./types.ts";

/** Tuning knobs; the defaults suit production. */
export interface CompiledMatcherOptions {
  /**
   * Size of one generation of the result cache, counted as one per result plus one per client in it (so
   * it bounds memory: about 2 x 8 bytes x this, plus merged groups). Two generations are kept: when the
   * young one is full it becomes the old one, and results found in the old one move back to the young.
   * 0 disables the cache: every call then takes the compute path (tests and benchmarks use it).
   */
  readonly resultCacheSize?: number;
}

const DEFAULT_RESULT_CACHE_SIZE = 1 << 20;
/** Severity slots of a key: 0 = wildcard (rules) or "no valid severity" (alerts), 1..4 the severities. */
const SEVERITY_SLOTS = SEVERITY_MAX + 1;

/**
 * The production matcher, compiled from integer columns (a snapshot's, or interned from a Rule[]).
 *
 * Every rule is filed under one integer key `(source * stride + name) * 5 + severity`, where source and
 * name are indices into the string table (0 = `*`) and severity 0 = `*`, so each wildcard pattern is just
 * a key with some parts 0: compiling is one pass over the columns and one counting sort (no per-rule
 * strings or objects). An alert is turned into the same kind of key (a source or name no rule names
 * becomes 0: it can only match wildcards, exactly like a literal `*`), and matching it is:
 *
 * - hot path: 2 string lookups (source, name -> index) and 1 integer lookup in a bounded result cache;
 * - compute path (first sight of an alert kind, or cache disabled): at most 7 bucket lookups (every
 *   combination of concrete-or-wildcard per field), then the per-client groups of the bucket (built once,
 *   lazily, and kept) or a merge of several buckets' groups, which reuses every group object whose client
 *   appears in one bucket only.
 *
 * Results are shared between calls and immutable by type only (Object.freeze measured much slower in JSC).
 * Group objects (and rule/client id strings) are reused across results, which also keeps the evaluator's
 * per-group WeakMap caches warm. Rule and client id strings are only built when a rule first matches.
 */
export class CompiledMatcher implements Matcher {
  /** Concrete rule strings -> their index in the string table (>= 1). */
  private readonly ids: Map<string, number>;
  private readonly stride: number;
  /** Pattern key -> bucket number; bucket b's rules are bucketRules[bucketStart[b] .. bucketStart[b + 1]). */
  private readonly buckets: Map<number, number>;
  private readonly bucketStart: Uint32Array;
  private readonly bucketRules: Uint32Array;
  /** Per-client groups of each bucket, and their client indices; built on first use. */
  private readonly bucketGroups: (ClientMatch[] | undefined)[];
  private readonly bucketGroupClients: (Uint32Array | undefined)[];
  private readonly ruleClient: ArrayLike<number>;
  private readonly ruleIdAt: (rule: number) => string;
  private readonly clientIdAt: (client: number) => string;
  private readonly clientIds: (string | undefined)[];
  /** Per-client scratch for grouping and merging; `mark` entries equal to `epoch` are current. */
  private readonly mark: Uint32Array;
  private readonly slot: Uint32Array;
  private epoch = 0;
  private readonly cacheSize: number;
  private young = new Map<number, readonly ClientMatch[]>();
  private youngWeight = 0;
  private old = new Map<number, readonly ClientMatch[]>();
  /** Scratch: bucket numbers hit by one compute() call. */
  private readonly hitBuckets: number[] = [];

  /**
   * From rules (any ids), or from a valid snapshot (as decodeSnapshot or buildSnapshot returns it), which
   * skips building rule objects and strings altogether: prefer `CompiledMatcher.fromSnapshot`.
   */
  constructor(source: readonly Rule[] | Snapshot, options: CompiledMatcherOptions = {}) {
    const table = Array.isArray(source)
      ? tableFromRules(source as readonly Rule[])
      : tableFromSnapshot(source as Snapshot);
    this.cacheSize = Math.max(0, Math.floor(options.resultCacheSize ?? DEFAULT_RESULT_CACHE_SIZE));
    const { strings, ruleClient, ruleSeverity, ruleSource, ruleName, clientCount } = table;
    const count = ruleClient.length;
    const stride = strings.length;
    this.stride = stride;
    this.ids = new Map();
    for (let i = 1; i < stride; i++) this.ids.set(strings[i] as string, i);
    this.ruleClient = ruleClient;
    this.ruleIdAt = table.ruleIdAt;
    this.clientIdAt = table.clientIdAt;
    this.clientIds = new Array(clientCount);
    this.mark = new Uint32Array(clientCount);
    this.slot = new Uint32Array(clientCount);

    // Counting sort of rule indices by key: bucket numbers in order of first appearance.
    const buckets = new Map<number, number>();
    const ruleBucket = new Uint32Array(count);
    const sizes = new Uint32Array(count + 1);
    let bucketCount = 0;
    for (let i = 0; i < count; i++) {
      const severity = ruleSeverity[i] as number;
      const s = ruleSource[i] as number;
      const n = ruleName[i] as number;
      if (!(severity >= SEVERITY_WILDCARD && severity <= SEVERITY_MAX && Number.isInteger(severity))) {
        throw new RangeError(`rule ${i}: severity ${severity} is not 0..4`);
      }
      if (severity === SEVERITY_WILDCARD && s === 0 && n === 0) {
        throw new RangeError(`rule ${i}: a rule cannot be * on severity, source and name`);
      }
      if (s >= stride || n >= stride || (ruleClient[i] as number) >= clientCount) {
        throw new RangeError(`rule ${i}: string or client index out of range`);
      }
      const key = (s * stride + n) * SEVERITY_SLOTS + severity;
      let bucket = buckets.get(key);
      if (bucket === undefined) {
        bucket = bucketCount++;
        buckets.set(key, bucket);
      }
      ruleBucket[i] = bucket;
      sizes[bucket] = (sizes[bucket] as number) + 1;
    }
    const bucketStart = new Uint32Array(bucketCount + 1);
    for (let b = 0; b < bucketCount; b++)
      bucketStart[b + 1] = (bucketStart[b] as number) + (sizes[b] as number);
    const cursor = sizes; // reused: next free position of each bucket
    cursor.set(bucketStart.subarray(0, bucketCount));
    const bucketRules = new Uint32Array(count);
    for (let i = 0; i < count; i++) {
      const bucket = ruleBucket[i] as number;
      bucketRules[cursor[bucket] as number] = i;
      cursor[bucket] = (cursor[bucket] as number) + 1;
    }
    this.buckets = buckets;
    this.bucketStart = bucketStart;
    this.bucketRules = bucketRules;
    this.bucketGroups = new Array(bucketCount);
    this.bucketGroupClients = new Array(bucketCount);
  }

  /** The matcher of a valid snapshot, without building Rule objects: the evaluator's load path. */
  static fromSnapshot(snapshot: Snapshot, options?: CompiledMatcherOptions): CompiledMatcher {
    return new CompiledMatcher(snapshot, options);
  }

  match(severity: number, source: string, name: string): readonly ClientMatch[] {
    const s = this.ids.get(source) ?? 0;
    const n = this.ids.get(name) ?? 0;
    // An alert severity outside 1..4 can only match rules with a wildcard severity: slot 0.
    const slot = severity === 1 || severity === 2 || severity === 3 || severity === 4 ? severity : 0;
    const key = (s * this.stride + n) * SEVERITY_SLOTS + slot;
    const cached = this.young.get(key);
    if (cached !== undefined) return cached;
    return this.miss(key, slot, s, n);
  }

  /** Cache miss: the old generation, else compute; either way the result joins the young generation. */
  private miss(key: number, slot: number, s: number, n: number): readonly ClientMatch[] {
    const result = this.old.get(key) ?? this.compute(slot, s, n);
    if (this.cacheSize > 0) {
      if (this.youngWeight >= this.cacheSize) {
        this.old = this.young;
        this.young = new Map();
        this.youngWeight = 0;
      }
      this.young.set(key, result);
      this.youngWeight += 1 + result.length;
    }
    return result;
  }

  private compute(slot: number, s: number, n: number): readonly ClientMatch[] {
    const hit = this.hitBuckets;
    let count = 0;
    const stride = this.stride;
    // Every combination of the alert's value or `*` per field; (*, *, *) is never a rule.
    for (let severity = slot; ; severity = 0) {
      for (let source = s; ; source = 0) {
        const base = source * stride;
        for (let name = n; ; name = 0) {
          const bucket = this.buckets.get((base + name) * SEVERITY_SLOTS + severity);
          if (bucket !== undefined) hit[count++] = bucket;
          if (name === 0) break;
        }
        if (source === 0) break;
      }
      if (severity === 0) break;
    }
    if (count === 0) return NO_MATCHES;
    if (count === 1) return this.groupsOf(hit[0] as number);
    return this.merge(count);
  }

  /** The per-client groups of one bucket, built on first use. */
  private groupsOf(bucket: number): ClientMatch[] {
    const built = this.bucketGroups[bucket];
    if (built !== undefined) return built;
    const start = this.bucketStart[bucket] as number;
    const end = this.bucketStart[bucket + 1] as number;
    const groups: ClientMatch[] = [];
    const clients: number[] = [];
    const mark = this.mark;
    const slot = this.slot;
    const epoch = this.nextEpoch();
    for (let j = start; j < end; j++) {
      const rule = this.bucketRules[j] as number;
      const client = this.ruleClient[rule] as number;
      const ruleId = this.ruleIdAt(rule);
      if (mark[client] === epoch) {
        ((groups[slot[client] as number] as ClientMatch).ruleIds as string[]).push(ruleId);
      } else {
        mark[client] = epoch;
        slot[client] = groups.length;
        groups.push({ clientId: this.clientId(client), ruleIds: [ruleId] });
        clients.push(client);
      }
    }
    this.bucketGroups[bucket] = groups;
    this.bucketGroupClients[bucket] = Uint32Array.from(clients);
    return groups;
  }

  /** Union of the groups of hitBuckets[0 .. count): one group per client, shared where unchanged. */
  private merge(count: number): ClientMatch[] {
    // Build any missing bucket groups first: that uses the same scratch marks as the merge.
    for (let h = 0; h < count; h++) this.groupsOf(this.hitBuckets[h] as number);
    const out: ClientMatch[] = [];
    const mark = this.mark;
    const slot = this.slot;
    const epoch = this.nextEpoch();
    // Clients already in `out` whose group is our own copy (so it may be appended to) are marked epoch + 1.
    const owned = this.nextEpoch();
    for (let h = 0; h < count; h++) {
      const bucket = this.hitBuckets[h] as number;
      const groups = this.bucketGroups[bucket] as ClientMatch[];
      const clients = this.bucketGroupClients[bucket] as Uint32Array;
      for (let g = 0; g < groups.length; g++) {
        const group = groups[g] as ClientMatch;
        const client = clients[g] as number;
        const state = mark[client];
        if (state !== epoch && state !== owned) {
          mark[client] = epoch;
          slot[client] = out.length;
          out.push(group);
        } else if (state === epoch) {
          const first = out[slot[client] as number] as ClientMatch;
          out[slot[client] as number] = {
            clientId: first.clientId,
            ruleIds: first.ruleIds.concat(group.ruleIds),
          };
          mark[client] = owned;
        } else {
          const ruleIds = (out[slot[client] as number] as ClientMatch).ruleIds as string[];
          for (const ruleId of group.ruleIds) ruleIds.push(ruleId);
        }
      }
    }
    return out;
  }

  private nextEpoch(): number {
    if (this.epoch >= 0xfffffff0) {
      this.mark.fill(0);
      this.epoch = 0;
    }
    return ++this.epoch;
  }

  private clientId(client: number): string {
    let id = this.clientIds[client];
    if (id === undefined) {
      id = this.clientIdAt(client);
      this.clientIds[client] = id;
    }
    return id;
  }
}

/** Rules as integer columns, with the ids behind them produced on demand. */
interface RuleTable {
  /** Index 0 is `*`. */
  readonly strings: readonly string[];
  readonly ruleClient: ArrayLike<number>;
  readonly ruleSeverity: ArrayLike<number>;
  readonly ruleSource: ArrayLike<number>;
  readonly ruleName: ArrayLike<number>;
  readonly clientCount: number;
  readonly ruleIdAt: (rule: number) => string;
  readonly clientIdAt: (client: number) => string;
}

function tableFromSnapshot(snapshot: Snapshot): RuleTable {
  const { ruleIds, clientIds } = snapshot;
  if (snapshot.strings[0] !== WILDCARD) throw new RangeError('snapshot strings[0] must be "*"');
  return {
    strings: snapshot.strings,
    ruleClient: snapshot.ruleClient,
    ruleSeverity: snapshot.ruleSeverity,
    ruleSource: snapshot.ruleSource,
    ruleName: snapshot.ruleName,
    clientCount: clientIds.length >>> 4,
    ruleIdAt: (rule) => formatUuid(ruleIds, rule << 4),
    clientIdAt: (client) => formatUuid(clientIds, client << 4),
  };
}

function tableFromRules(rules: readonly Rule[]): RuleTable {
  const count = rules.length;
  const strings = [WILDCARD];
  const stringIndex = new Map([[WILDCARD, 0]]);
  const intern = (value: string) => {
    let index = stringIndex.get(value);
    if (index === undefined) {
      index = strings.push(value) - 1;
      stringIndex.set(value, index);
    }
    return index;
  };
  const clients: string[] = [];
  const clientIndex = new Map<string, number>();
  const ruleClient = new Uint32Array(count);
  const ruleSeverity = new Float64Array(count); // not Uint32: a bad severity must reach the range check
  const ruleSource = new Uint32Array(count);
  const ruleName = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    const rule = rules[i] as Rule;
    let client = clientIndex.get(rule.clientId);
    if (client === undefined) {
      client = clients.push(rule.clientId) - 1;
      clientIndex.set(rule.clientId, client);
    }
    ruleClient[i] = client;
    ruleSeverity[i] = rule.severity;
    ruleSource[i] = intern(rule.source);
    ruleName[i] = intern(rule.name);
  }
  return {
    strings,
    ruleClient,
    ruleSeverity,
    ruleSource,
    ruleName,
    clientCount: clients.length,
    ruleIdAt: (rule) => (rules[rule] as Rule).ruleId,
    clientIdAt: (client) => clients[client] as string,
  };
}
