/**
 * Matcher benchmark: `node_modules/.bin/bun bench/match.ts`. Targets: >= 5M alerts/s on one core at 1M rules
 * and compile < 1 s. Prints one table; the workload is described in WORKLOAD below and printed with it.
 *
 * Every string is a fresh flat string, as a decoder or database driver makes them: rules and alerts never
 * share string objects, so hashes are computed during the timed runs, not cached from rule building.
 *
 * Allocation per alert: after Bun.gc(true), JSC's heapStats().heapSize and objectCount only change when a
 * collection runs, while heapCapacity grows by one 16 KB block at a time as new cells are allocated. So a
 * window of alerts is run with no GC in it, and its heapCapacity growth / alerts is the GC-heap bytes
 * allocated per alert (about 32-48 B per object). A window in which heapSize or objectCount changed had a
 * GC and is retried smaller. Calibrated in the output against loops allocating 0 and 1 object per iteration.
 * Cells freed by an earlier pass are reused without capacity growth, so rows whose earlier passes left garbage
 * of the same sizes (no cache, worst) read low: take them as lower bounds. Zero stays zero.
 */
import { heapStats } from "bun:jsc";
import { CompiledMatcher, type CompiledMatcherOptions } from "../src/core/matching/compiled.ts";
import { ReferenceMatcher } from "../src/core/matching/reference.ts";
import { clientScope, ScopeFilter, sharedScope } from "../src/core/matching/scope.ts";
import {
  type ClientMatch,
  type Grant,
  type Matcher,
  NO_MATCHES,
  type Rule,
} from "../src/core/matching/types.ts";
import {
  buildSnapshot,
  decodeSnapshot,
  encodeSnapshot,
  formatUuid,
  type Snapshot,
  snapshotGrants,
} from "../src/core/snapshot.ts";
import { prng } from "../test/support/random-rules.ts";

const SOURCES = 8000;
const NAMES = 4000;
/** Alert names a source can raise, drawn from the shared name list (popular names recur across sources). */
const NAMES_PER_SOURCE = 16;
const MAX_CLIENTS = 100_000;
/** Pattern shares [severity, source, name concrete?, share]: 70% exact, 30% with one or two wildcards. */
const PATTERN_MIX: [boolean, boolean, boolean, number][] = [
  [true, true, true, 0.7],
  [false, true, true, 0.15],
  [true, true, false, 0.1],
  [true, false, true, 0.03],
  [false, true, false, 0.015],
  [false, false, true, 0.005],
];
/** Alert severities LOW..CRITICAL; rules pick a severity uniformly. */
const ALERT_SEVERITY_WEIGHTS = [0.4, 0.3, 0.2, 0.1];
/** Shared scopes, each granted to this share of the clients. */
const SHARED_SCOPES = 100;
const SHARED_GRANT_SHARE = 0.01;
/** Each alert source sends under one scope: internal (""), a client's private scope, or a shared one. */
const SCOPE_MIX = { internal: 0.2, private: 0.6, shared: 0.2 };

export const WORKLOAD = `workload: N rules over min(N/10, ${MAX_CLIENTS / 1000}k) clients (uniform), ${SOURCES} sources, ${NAMES} names, each source raising ${NAMES_PER_SOURCE} of the names;
  rules 70% exact, 15% (*, src, name), 10% (sev, src, *), 3% (sev, *, name), 1.5% (*, src, *), 0.5% (*, *, name), no (sev, *, *);
  popularity Zipf-like: sources' name lists draw names Zipf(s=0.7); a rule picks its source Zipf(s=0.5) and then one
  of its names uniformly (a rule without source: any name uniformly); alerts come from sources Zipf(s=1.0) ranked
  independently of rules, names Zipf(s=1.0) within the source's list, severity 40/30/20/10% LOW..CRITICAL;
  hit = that alert stream (replayed: "1st pass" fills the result cache, "steady" is the next pass; "no cache" computes every alert),
  scoped = the hit stream with the evaluator's scope filter after match(): each source sends under one scope, ${SCOPE_MIX.internal * 100}% internal,
  ${SCOPE_MIX.private * 100}% a random client's private scope, ${SCOPE_MIX.shared * 100}% one of ${SHARED_SCOPES} shared scopes each granted to ${SHARED_GRANT_SHARE * 100}% of the clients,
  miss = sources and names no rule names, worst = one alert kind hitting all 7 patterns x 300 rules of 1000 clients.`;

/** Samples 0..n-1 with P(k) proportional to 1 / (k + 1)^exponent, ranks permuted by `order`. */
function zipf(random: () => number, n: number, exponent: number, order?: Uint32Array): () => number {
  const cdf = new Float64Array(n);
  let total = 0;
  for (let k = 0; k < n; k++) {
    total += 1 / (k + 1) ** exponent;
    cdf[k] = total;
  }
  return () => {
    const target = random() * total;
    let low = 0;
    let high = n - 1;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((cdf[mid] as number) < target) low = mid + 1;
      else high = mid;
    }
    return order === undefined ? low : (order[low] as number);
  };
}

function shuffled(random: () => number, n: number): Uint32Array {
  const order = Uint32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  return order;
}

/** A fresh flat string: template literals make ropes, which a driver's or decoder's strings are not. */
function fresh(text: string): string {
  text.charCodeAt(0); // resolves a rope in place (its hash is computed on first use, not here)
  return text;
}

const uuidBytes = new Uint8Array(16);
function uuid(random: () => number): string {
  for (let i = 0; i < 16; i++) uuidBytes[i] = Math.floor(random() * 256);
  return formatUuid(uuidBytes, 0);
}

interface World {
  sourceNames: Uint32Array[];
  alertSource: () => number;
  ruleSource: () => number;
  nameRank: () => number;
  random: () => number;
}

function world(seed: number): World {
  const random = prng(seed);
  const anyName = zipf(random, NAMES, 0.7);
  const sourceNames = Array.from({ length: SOURCES }, () => {
    const names = new Set<number>();
    while (names.size < NAMES_PER_SOURCE) names.add(anyName());
    return Uint32Array.from(names);
  });
  return {
    sourceNames,
    alertSource: zipf(random, SOURCES, 1.0, shuffled(random, SOURCES)),
    ruleSource: zipf(random, SOURCES, 0.5, shuffled(random, SOURCES)),
    nameRank: zipf(random, NAMES_PER_SOURCE, 1.0),
    random,
  };
}

const sourceText = (source: number) => fresh(`svc-${source}.prod.example`);
const nameText = (name: number) => fresh(`alert_${name}`);

/** The rule set of WORKLOAD with `count` rules. */
export function realisticRules(count: number, seed = 1): Rule[] {
  const w = world(seed);
  const random = w.random;
  const clientCount = Math.min(MAX_CLIENTS, Math.max(1, count / 10));
  const clientBytes = new Uint8Array(clientCount * 16);
  for (let i = 0; i < clientBytes.length; i++) clientBytes[i] = Math.floor(random() * 256);
  const rules = new Array<Rule>(count);
  for (let i = 0; i < count; i++) {
    let roll = random();
    let pattern = PATTERN_MIX[0] as (typeof PATTERN_MIX)[number];
    for (const candidate of PATTERN_MIX) {
      pattern = candidate;
      roll -= candidate[3];
      if (roll < 0) break;
    }
    const source = w.ruleSource();
    const names = w.sourceNames[source] as Uint32Array;
    // A rule with a source names one of its alerts; one without names any alert name.
    const name = pattern[1]
      ? (names[Math.floor(random() * names.length)] as number)
      : Math.floor(random() * NAMES);
    rules[i] = {
      ruleId: uuid(random),
      clientId: formatUuid(clientBytes, Math.floor(random() * clientCount) * 16), // a fresh string per row
      severity: pattern[0] ? 1 + Math.floor(random() * 4) : 0,
      source: pattern[1] ? sourceText(source) : "*",
      name: pattern[2] ? nameText(name) : "*",
    };
  }
  return rules;
}

type Alert = [severity: number, source: string, name: string, scope?: string];

/** match() with the alert's scope: the matcher alone ignores it, `scoped` filters by it. */
interface ScopedMatcher {
  match(severity: number, source: string, name: string, scope?: string): readonly ClientMatch[];
}

/** The evaluator's hot path: match, then keep the clients granted the scope (a malformed one: none). */
function scoped(matcher: Matcher, filter: ScopeFilter): ScopedMatcher {
  return {
    match: (severity, source, name, scope = "") =>
      filter.admit(scope, matcher.match(severity, source, name)) ?? NO_MATCHES,
  };
}

/** SHARED_SCOPES shared scopes, each granted to SHARED_GRANT_SHARE of the clients. */
function sharedGrants(clients: readonly string[], seed: number): Grant[] {
  const random = prng(seed);
  const perScope = Math.max(1, Math.round(clients.length * SHARED_GRANT_SHARE));
  return Array.from({ length: SHARED_SCOPES }, (_, s) => {
    const granted = new Set<string>();
    while (granted.size < perScope) granted.add(clients[Math.floor(random() * clients.length)] as string);
    return [...granted].map((clientId) => ({ scope: `scope-${s}`, clientId }));
  }).flat();
}

/** `alerts` with a scope each, one per source (SCOPE_MIX). */
function withScopes(alerts: readonly Alert[], clients: readonly string[], seed: number): Alert[] {
  const random = prng(seed);
  const scopeOfSource = new Map<string, string>();
  return alerts.map(([severity, source, name]) => {
    let scope = scopeOfSource.get(source);
    if (scope === undefined) {
      const roll = random();
      scope =
        roll < SCOPE_MIX.internal
          ? ""
          : roll < SCOPE_MIX.internal + SCOPE_MIX.private
            ? clientScope(clients[Math.floor(random() * clients.length)] as string)
            : sharedScope(`scope-${Math.floor(random() * SHARED_SCOPES)}`);
      scopeOfSource.set(source, scope);
    }
    return [severity, source, name, scope];
  });
}

function clientsOf(snapshot: Snapshot): string[] {
  return Array.from({ length: snapshot.clientIds.length / 16 }, (_, i) =>
    formatUuid(snapshot.clientIds, i * 16),
  );
}

function alertSeverity(random: () => number): number {
  let roll = random();
  for (let i = 0; i < ALERT_SEVERITY_WEIGHTS.length; i++) {
    roll -= ALERT_SEVERITY_WEIGHTS[i] as number;
    if (roll < 0) return i + 1;
  }
  return 4;
}

export function hitStream(count: number, seed: number): Alert[] {
  const w = world(1); // the rules' world: same sources and name lists
  const random = prng(seed);
  return Array.from({ length: count }, (): Alert => {
    const source = w.alertSource();
    const names = w.sourceNames[source] as Uint32Array;
    return [alertSeverity(random), sourceText(source), nameText(names[w.nameRank()] as number)];
  });
}

function missStream(count: number, seed: number): Alert[] {
  const random = prng(seed);
  return Array.from(
    { length: count },
    (_, i): Alert => [
      alertSeverity(random),
      fresh(`unknown-${i % 5000}.example`),
      fresh(`unknown_alert_${i % 300}`),
    ],
  );
}

/** Rules making one alert kind hit all 7 patterns, 300 rules each, over 1000 clients (so clients merge). */
function worstCase(base: readonly Rule[]): { rules: Rule[]; alert: () => Alert } {
  const random = prng(77);
  const clients = Array.from({ length: 1000 }, () => uuid(random));
  const extra: Rule[] = [];
  for (let mask = 1; mask < 8; mask++) {
    for (let i = 0; i < 300; i++) {
      extra.push({
        ruleId: uuid(random),
        clientId: clients[Math.floor(random() * clients.length)] as string,
        severity: mask & 4 ? 4 : 0,
        source: mask & 2 ? "svc-worst" : "*",
        name: mask & 1 ? "alert_worst" : "*",
      });
    }
  }
  return {
    rules: [...base, ...extra],
    alert: () => [4, ["svc", "worst"].join("-"), ["alert", "worst"].join("_")],
  };
}

interface RunResult {
  alertsPerSecond: number;
  matchedShare: number;
  clientsPerAlert: number;
  bytesPerAlert: number;
}

/**
 * Times match() alone: the loop only compares each result with NO_MATCHES (so the call cannot be dropped)
 * and never reads it. Reading a result touches its array, a cache miss at a scattered heap address once
 * 1M rules' data is live, and that first read is its consumer's work (the evaluator then reads every
 * group), so it is counted in a separate untimed pass that gives the client counts.
 */
function timed(matcher: ScopedMatcher, alerts: readonly Alert[]): Omit<RunResult, "bytesPerAlert"> {
  let matched = 0;
  const start = performance.now();
  for (let i = 0; i < alerts.length; i++) {
    const alert = alerts[i] as Alert;
    if (matcher.match(alert[0], alert[1], alert[2], alert[3]) !== NO_MATCHES) matched++;
  }
  const elapsedMs = performance.now() - start;
  let clients = 0;
  for (const [severity, source, name, scope] of alerts)
    clients += matcher.match(severity, source, name, scope).length;
  return {
    alertsPerSecond: alerts.length / (elapsedMs / 1000),
    matchedShare: matched / alerts.length,
    clientsPerAlert: clients / alerts.length,
  };
}

/**
 * GC-heap bytes allocated per call of `work(i)`, over a GC-free window (see the file comment). Each window
 * (a GC in one means a smaller retry) gets a new `work` from `makeWork`, made before the window starts.
 */
export function bytesPerCall(calls: number, makeWork: () => (i: number) => unknown): number {
  let sink: unknown;
  for (let window = calls; window >= 1000; window = Math.floor(window / 4)) {
    const work = makeWork();
    Bun.gc(true);
    const before = heapStats();
    for (let i = 0; i < window; i++) sink = work(i);
    const after = heapStats();
    if (after.heapSize === before.heapSize && after.objectCount === before.objectCount) {
      return (after.heapCapacity - before.heapCapacity) / window;
    }
  }
  void sink;
  return Number.NaN; // a GC in every window
}

/** The same alerts in new string objects (unhashed, as each decoded alert is): one copy per timed pass. */
function copy(alerts: readonly Alert[]): Alert[] {
  return alerts.map(([severity, source, name, scope]) => [
    severity,
    fresh(`${source} `.slice(0, -1)),
    fresh(`${name} `.slice(0, -1)),
    scope === undefined ? undefined : fresh(`${scope} `.slice(0, -1)),
  ]);
}

/**
 * `passes` timed passes over fresh copies of `alerts`, the last one reported; then bytes/alert in the state
 * that pass ran in: `matcher` after it, or, given `newMatcher` (a first pass), a new matcher per window.
 */
function run(
  matcher: ScopedMatcher,
  alerts: readonly Alert[],
  passes: number,
  newMatcher?: () => ScopedMatcher,
): RunResult {
  let result: Omit<RunResult, "bytesPerAlert"> | undefined;
  for (let pass = 0; pass < passes; pass++) {
    const fresh = copy(alerts);
    Bun.gc(true);
    result = timed(matcher, fresh);
  }
  const window = copy(alerts.slice(0, 100_000));
  const bytesPerAlert = bytesPerCall(window.length, () => {
    const windowMatcher = newMatcher?.() ?? matcher;
    return (i) => {
      const alert = window[i] as Alert;
      return windowMatcher.match(alert[0], alert[1], alert[2], alert[3]);
    };
  });
  return { ...(result as Omit<RunResult, "bytesPerAlert">), bytesPerAlert };
}

function heapUsedBytes(): number {
  Bun.gc(true);
  return heapStats().heapSize;
}

const fmt = (value: number, digits = 0) => value.toLocaleString("en-US", { maximumFractionDigits: digits });
const millions = (value: number) => `${(value / 1e6).toFixed(2)}M`;
const time = <T>(work: () => T): [T, number] => {
  const start = performance.now();
  const result = work();
  return [result, performance.now() - start];
};

if (import.meta.main) {
  const rows: string[][] = [];
  const header = [
    "rules",
    "stream",
    "compile ms (rules|snapshot)",
    "heap MB",
    "alerts/s",
    "matched",
    "clients/alert",
    "bytes/alert",
  ];
  const stream = 500_000;
  const noCache: CompiledMatcherOptions = { resultCacheSize: 0 };
  const hits = hitStream(stream, 2);
  const misses = missStream(stream, 3);
  for (const count of [10_000, 100_000, 1_000_000]) {
    let rules: Rule[] | undefined = realisticRules(count);
    const unscoped = buildSnapshot(rules, 1n, 0n);
    const clients = clientsOf(unscoped);
    const grants = sharedGrants(clients, 4);
    const snapshot = decodeSnapshot(encodeSnapshot(buildSnapshot(rules, 1n, 0n, grants)));
    // The evaluator's matcher (from the snapshot) is the one weighed and timed; the other is only compiled.
    const heapBefore = heapUsedBytes();
    const [matcher, snapshotMs] = time(() => CompiledMatcher.fromSnapshot(snapshot));
    const heapMb = (heapUsedBytes() - heapBefore) / 2 ** 20;
    const rulesMs = time(() => new CompiledMatcher(rules as Rule[]))[1];
    const addRow = (label: string, result: RunResult, compile = "", heap = "") =>
      rows.push([
        fmt(count),
        label,
        compile,
        heap,
        millions(result.alertsPerSecond),
        `${fmt(result.matchedShare * 100, 1)}%`,
        fmt(result.clientsPerAlert, 2),
        fmt(result.bytesPerAlert, 2),
      ]);
    const compiled = `${fmt(rulesMs)} | ${fmt(snapshotMs)}`;
    const newMatcher = () => CompiledMatcher.fromSnapshot(snapshot);
    addRow("hit, 1st pass", run(matcher, hits, 1, newMatcher), compiled, fmt(heapMb, 1));
    addRow("hit, steady", run(matcher, hits, 2), "", fmt((heapUsedBytes() - heapBefore) / 2 ** 20, 1));
    // Two passes: the first builds the groups of every bucket hit, which the 1st-pass row already shows.
    addRow("hit, no cache", run(CompiledMatcher.fromSnapshot(snapshot, noCache), hits, 2));
    addRow("miss", run(matcher, misses, 2));
    // The evaluator's path with scopes: the same matcher state (its result cache warm from the rows above).
    const scopedHits = withScopes(hits, clients, 5);
    const filter = () => new ScopeFilter(snapshotGrants(snapshot));
    const scopedMatcher = scoped(matcher, filter());
    addRow(
      "hit, scoped 1st",
      run(scopedMatcher, scopedHits, 1, () => scoped(matcher, filter())),
    );
    addRow("hit, scoped steady", run(scopedMatcher, scopedHits, 2));
    const worst = worstCase(rules);
    rules = undefined;
    const worstAlerts = Array.from({ length: 200_000 }, worst.alert);
    addRow("worst, cached", run(new CompiledMatcher(worst.rules), worstAlerts, 2));
    addRow("worst, no cache", run(new CompiledMatcher(worst.rules, noCache), worstAlerts.slice(0, 5000), 2));
  }
  console.log(table(header, rows));
  console.log(WORKLOAD);

  const rules = realisticRules(10_000);
  const alerts = hits.slice(0, 20_000);
  const compiled = timed(new CompiledMatcher(rules), alerts);
  const reference = timed(new ReferenceMatcher(rules), alerts);
  console.log(
    `\n10k rules, 20k hit alerts: compiled ${millions(compiled.alertsPerSecond)}/s, reference ${fmt(reference.alertsPerSecond)}/s, ratio ${fmt(compiled.alertsPerSecond / reference.alertsPerSecond)}x`,
  );
  const calibration = [
    bytesPerCall(100_000, () => (i) => i),
    bytesPerCall(100_000, () => (i) => ({ i })),
    bytesPerCall(100_000, () => (i) => [i, i]),
  ];
  console.log(
    `bytes/alert calibration (same method): no allocation ${fmt(calibration[0] as number, 2)}, {i} ${fmt(calibration[1] as number, 2)}, [i, i] ${fmt(calibration[2] as number, 2)} B/call`,
  );
  const memory = process.memoryUsage();
  console.log(
    `process: rss ${fmt(memory.rss / 2 ** 20)} MB, heapStats().heapSize ${fmt(heapStats().heapSize / 2 ** 20)} MB`,
  );
  console.log("targets: >= 5M alerts/s at 1M rules on one core; compile of 1M rules < 1 s");
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((cell, i) => cell.padStart(widths[i] ?? 0)).join("  ");
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}
