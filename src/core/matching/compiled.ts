import { SEVERITY_MAX, SEVERITY_WILDCARD } from "../severity.ts";
import { formatUuid, type Snapshot } from "../snapshot.ts";
import { PairMap } from "./pair-map.ts";
import { type ClientMatch, type Matcher, NO_MATCHES, type Rule, WILDCARD } from "./types.ts";

/** Tuning knobs; the defaults suit production. */
export interface CompiledMatcherOptions {
  /**
   * Size of one generation of the result cache in 8-byte words, roughly: RESULT_WORDS per result plus one
   * per client in it. Two generations are kept: when the young one is full it becomes the old one, and
   * results found in the old one move back to the young. 0 disables the cache: every call then takes the
   * compute path (tests and benchmarks use it).
   */
  readonly resultCacheSize?: number;
}

/** 32 MB per generation: 1M rules' realistic bench stream (120k alert kinds, 10 clients each) fits in one. */
const DEFAULT_RESULT_CACHE_SIZE = 1 << 22;
/** Words a cached result costs besides its clients: 2-4 slots of 3 words (load 1/4-1/2), an array header. */
const RESULT_WORDS = 12;
/** Severity slots: 0 = wildcard (rules) or "no valid severity" (alerts), 1..4 the severities. */
const SEVERITY_SLOTS = SEVERITY_MAX + 1;
/** A pattern's entry is (first bucket << SLOT_BITS) | one bit per severity slot that has a bucket. */
const SLOT_BITS = SEVERITY_SLOTS;
/** Set bits of a slot mask: a pattern's bucket for slot v is its first + BITS_SET[mask & ((1 << v) - 1)]. */
const BITS_SET = Uint8Array.from({ length: 1 << SLOT_BITS }, (_, mask) =>
  Array.from({ length: SLOT_BITS }, (_, bit) => (mask >>> bit) & 1).reduce((a, b) => a + b, 0),
);
/** Keeps (first bucket << SLOT_BITS) and the rule keys ((pattern << 3) | severity) within int32. */
const RULES_MAX = 1 << 25;

/**
 * The production matcher, compiled from integer columns (a snapshot's, or interned from a Rule[]).
 *
 * Source and name are indices into the string table (0 = `*`), so a wildcard pattern's key is just its
 * concrete fields: pattern `s` is (source s, any name), with 0 = (any source, any name); `stride + n` is
 * (any source, name n); `2 * stride + p` is the p-th distinct (source, name) pair, numbered by a PairMap.
 * Each pattern owns up to 5 contiguous buckets, one per severity slot (0 = `*`), found through one int
 * (`patterns`); a bucket's rules sit in one counting-sorted Uint32Array. Compiling is three passes over the
 * columns, with no per-rule strings, objects or Map operations.
 *
 * Matching an alert: 2 string lookups (source, name -> index; a string no rule names becomes 0, which can
 * only match wildcards, exactly like a literal `*`), then 1 probe of the result cache, keyed by the two
 * indices and the severity. On a cache miss: at most 7 buckets (1 pair probe plus array reads), then the
 * per-client groups of the one bucket hit (built on first use and kept) or a merge of several buckets'
 * groups, which reuses every group object whose client is in one bucket only. The merged result is what the
 * cache keeps, so alert kinds that hit several patterns are merged once per cache lifetime, not per alert.
 *
 * Results are shared between calls and immutable by type only (Object.freeze measured much slower in JSC).
 * Group objects (and rule/client id strings) are reused across results, which also keeps the evaluator's
 * per-group WeakMap caches warm. Rule and client id strings are only built when a rule first matches.
 */
export class CompiledMatcher implements Matcher {
  /** Concrete rule strings -> their index in the string table (>= 1). */
  private readonly ids: Map<string, number>;
  private readonly stride: number;
  /** (source, name) of every pair pattern -> p; the pattern is `2 * stride + p`. */
  private readonly pairs: PairMap<number>;
  /** Per pattern: (first bucket << SLOT_BITS) | slot mask; the mask is 0 when it has no rules. */
  private readonly patterns: Int32Array;
  /** Bucket b's rules are bucketRules[bucketStart[b] .. bucketStart[b + 1]). */
  private readonly bucketStart: Uint32Array;
  private readonly bucketRules: Uint32Array;
  /** Per-client groups of each bucket, built on first use. */
  private readonly bucketGroups: (ClientMatch[] | undefined)[];
  /** The client of bucketGroups[b][g] is groupClients[bucketStart[b] + g] (no more groups than rules). */
  private readonly groupClients: Uint32Array;
  private readonly ruleClient: ArrayLike<number>;
  private readonly ruleIdAt: (rule: number) => string;
  private readonly clientIdAt: (client: number) => string;
  private readonly clientIds: (string | undefined)[];
  /** Per-client scratch for grouping and merging; `mark` entries equal to `epoch` are current. */
  private readonly mark: Uint32Array;
  private readonly slot: Uint32Array;
  private epoch = 0;
  /**
   * The result cache, keyed by (source index, name index * SEVERITY_SLOTS + slot), in two generations:
   * when the young one is full it becomes the old one, and results found in the old one move back.
   */
  private readonly cacheSize: number;
  private young = new PairMap<readonly ClientMatch[]>();
  private youngWeight = 0;
  private old = new PairMap<readonly ClientMatch[]>();
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
    if (count > RULES_MAX) throw new RangeError(`${count} rules: at most ${RULES_MAX} are supported`);
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

    // Pass 1: each rule's pattern and severity, and which severity slots each pattern uses.
    const pairs = new PairMap<number>();
    const slotMasks = new Uint8Array(2 * stride + count);
    const ruleKeys = new Uint32Array(count); // (pattern << 3) | severity, then the rule's bucket
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
      const pattern = n === 0 ? s : s === 0 ? stride + n : 2 * stride + pairNumber(pairs, s, n);
      slotMasks[pattern] = (slotMasks[pattern] as number) | (1 << severity);
      ruleKeys[i] = (pattern << 3) | severity;
    }
    // Buckets numbered pattern by pattern, severity slot by slot.
    const patterns = new Int32Array(2 * stride + pairs.size);
    let bucketCount = 0;
    for (let pattern = 0; pattern < patterns.length; pattern++) {
      const mask = slotMasks[pattern] as number;
      patterns[pattern] = (bucketCount << SLOT_BITS) | mask;
      bucketCount += BITS_SET[mask] as number;
    }
    // Pass 2: each rule's bucket and the bucket sizes; pass 3: counting sort of rule indices by bucket.
    const cursor = new Uint32Array(bucketCount + 1);
    for (let i = 0; i < count; i++) {
      const key = ruleKeys[i] as number;
      const entry = patterns[key >>> 3] as number;
      const bucket = (entry >>> SLOT_BITS) + (BITS_SET[entry & ((1 << (key & 7)) - 1)] as number);
      ruleKeys[i] = bucket;
      cursor[bucket + 1] = (cursor[bucket + 1] as number) + 1;
    }
    for (let b = 0; b < bucketCount; b++) cursor[b + 1] = (cursor[b + 1] as number) + (cursor[b] as number);
    const bucketStart = cursor.slice();
    const bucketRules = new Uint32Array(count);
    for (let i = 0; i < count; i++) {
      const bucket = ruleKeys[i] as number;
      bucketRules[cursor[bucket] as number] = i;
      cursor[bucket] = (cursor[bucket] as number) + 1;
    }
    this.pairs = pairs;
    this.patterns = patterns;
    this.bucketStart = bucketStart;
    this.bucketRules = bucketRules;
    this.bucketGroups = new Array(bucketCount);
    this.groupClients = new Uint32Array(count);
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
    return this.young.get(s, n * SEVERITY_SLOTS + slot) ?? this.miss(slot, s, n);
  }

  /** Cache miss: the old generation, else compute; either way the result joins the young generation. */
  private miss(slot: number, s: number, n: number): readonly ClientMatch[] {
    const key = n * SEVERITY_SLOTS + slot;
    const result = this.old.get(s, key) ?? this.compute(slot, s, n);
    if (this.cacheSize > 0) {
      if (this.youngWeight >= this.cacheSize) this.nextGeneration();
      this.young.set(s, key, result);
      this.youngWeight += RESULT_WORDS + result.length;
    }
    return result;
  }

  /** The young generation becomes the old one; the old one's storage is emptied and reused. */
  private nextGeneration(): void {
    const emptied = this.old;
    emptied.clear();
    this.old = this.young;
    this.young = emptied;
    this.youngWeight = 0;
  }

  private compute(slot: number, s: number, n: number): readonly ClientMatch[] {
    // Every pattern the alert can hit: (source, *) or for s = 0 (*, *); (*, *) again only if s != 0;
    // (*, name); (source, name). Each at the alert's severity slot and at `*`.
    let count = this.collect(s, slot, 0);
    if (s !== 0) count = this.collect(0, slot, count);
    if (n !== 0) {
      count = this.collect(this.stride + n, slot, count);
      const pair = s === 0 ? undefined : this.pairs.get(s, n);
      if (pair !== undefined) count = this.collect(2 * this.stride + pair, slot, count);
    }
    if (count === 0) return NO_MATCHES;
    if (count === 1) return this.groupsOf(this.hitBuckets[0] as number);
    return this.merge(count);
  }

  /** Appends the pattern's buckets for `*` and for the slot to hitBuckets[count ..]; returns the new count. */
  private collect(pattern: number, slot: number, count: number): number {
    const entry = this.patterns[pattern] as number;
    const first = entry >>> SLOT_BITS;
    // (*, *, *) is never a rule, so pattern 0 has no slot-0 bucket and an alert slot 0 adds nothing twice.
    if ((entry & 1) !== 0) this.hitBuckets[count++] = first;
    if (slot !== 0 && ((entry >>> slot) & 1) !== 0) {
      this.hitBuckets[count++] = first + (BITS_SET[entry & ((1 << slot) - 1)] as number);
    }
    return count;
  }

  /** The per-client groups of one bucket, built on first use. */
  private groupsOf(bucket: number): ClientMatch[] {
    const built = this.bucketGroups[bucket];
    if (built !== undefined) return built;
    const start = this.bucketStart[bucket] as number;
    const end = this.bucketStart[bucket + 1] as number;
    const groups: ClientMatch[] = [];
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
        this.groupClients[start + groups.length] = client;
        groups.push({ clientId: this.clientId(client), ruleIds: [ruleId] });
      }
    }
    this.bucketGroups[bucket] = groups;
    return groups;
  }

  /** Union of the groups of hitBuckets[0 .. count): one group per client, shared where unchanged. */
  private merge(count: number): ClientMatch[] {
    const hit = this.hitBuckets;
    // Build any missing bucket groups first (that uses the same scratch marks as the merge), and size `out`.
    let total = 0;
    for (let h = 0; h < count; h++) total += this.groupsOf(hit[h] as number).length;
    const out = new Array<ClientMatch>(total);
    let size = 0;
    const mark = this.mark;
    const slot = this.slot;
    const epoch = this.nextEpoch();
    // Clients already in `out` whose group is our own copy (so it may be appended to) are marked epoch + 1.
    const owned = this.nextEpoch();
    for (let h = 0; h < count; h++) {
      const bucket = hit[h] as number;
      const groups = this.bucketGroups[bucket] as ClientMatch[];
      const start = this.bucketStart[bucket] as number;
      for (let g = 0; g < groups.length; g++) {
        const group = groups[g] as ClientMatch;
        const client = this.groupClients[start + g] as number;
        const state = mark[client];
        if (state !== epoch && state !== owned) {
          mark[client] = epoch;
          slot[client] = size;
          out[size++] = group;
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
    out.length = size;
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

/** The number of pair (s, n) in `pairs`, numbering it next if new. */
function pairNumber(pairs: PairMap<number>, s: number, n: number): number {
  let pair = pairs.get(s, n);
  if (pair === undefined) {
    pair = pairs.size;
    pairs.set(s, n, pair);
  }
  return pair;
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
