/**
 * Matcher benchmark: `node_modules/.bin/bun bench/match.ts`. Prints a table; targets are >= 5M alerts/s on
 * one core at 1M rules and compile < 1 s. Alerts are fresh strings (as a decoder makes them), so their
 * hashes are computed during the run, not cached from rule building.
 */
import { heapStats } from "bun:jsc";
import { CompiledMatcher } from "../src/core/matching/compiled.ts";
import { ReferenceMatcher } from "../src/core/matching/reference.ts";
import { prng, randomUuid } from "../src/core/matching/test-support.ts";
import type { Matcher, Rule } from "../src/core/matching/types.ts";

const SOURCES = 3000;
const NAMES = 4000;

/** Share of rules per pattern (severity, source, name concrete?); severity-only subscriptions are rare. */
const PATTERN_MIX: [boolean, boolean, boolean, number][] = [
  [true, true, true, 0.55],
  [true, true, false, 0.15],
  [false, true, true, 0.1],
  [true, false, true, 0.1],
  [false, true, false, 0.06],
  [false, false, true, 0.04],
];

/** `count` rules over count/10 clients (at most 100k), 3000 sources, 4000 names. */
export function realisticRules(count: number, seed = 1): Rule[] {
  const random = prng(seed);
  const clients = Array.from({ length: Math.min(100_000, Math.max(1, count / 10)) }, () =>
    randomUuid(random),
  );
  const rules = new Array<Rule>(count);
  for (let i = 0; i < count; i++) {
    let roll = random();
    let pattern = PATTERN_MIX[0] as (typeof PATTERN_MIX)[number];
    for (const candidate of PATTERN_MIX) {
      pattern = candidate;
      roll -= candidate[3];
      if (roll < 0) break;
    }
    rules[i] = {
      ruleId: randomUuid(random),
      clientId: clients[Math.floor(random() * clients.length)] as string,
      severity: pattern[0] ? 1 + Math.floor(random() * 4) : 0,
      source: pattern[1] ? `source-${skewed(random, SOURCES)}` : "*",
      name: pattern[2] ? `alert-${skewed(random, NAMES)}` : "*",
    };
  }
  return rules;
}

/** Popular values are more common (roughly Zipf-like), as in real alert traffic. */
function skewed(random: () => number, cardinality: number): number {
  return Math.floor(cardinality * random() ** 2);
}

type Alert = [severity: number, source: string, name: string];

function alertStream(count: number, seed: number, kind: "hit" | "miss"): Alert[] {
  const random = prng(seed);
  return Array.from({ length: count }, (_, i): Alert => {
    const severity = 1 + Math.floor(random() * 4);
    if (kind === "miss") return [severity, `unknown-source-${i}`, `unknown-alert-${i}`];
    return [severity, `source-${skewed(random, SOURCES)}`, `alert-${skewed(random, NAMES)}`];
  });
}

interface RunResult {
  alertsPerSecond: number;
  matchedShare: number;
  clientsPerAlert: number;
  objectsPerAlert: number;
  bytesPerAlert: number;
}

/** Warm up on the first slice, then time one pass; objects/bytes are heap growth without a GC in between. */
function run(matcher: Matcher, alerts: readonly Alert[]): RunResult {
  for (let i = 0; i < Math.min(50_000, alerts.length); i++) {
    const alert = alerts[i] as Alert;
    matcher.match(alert[0], alert[1], `${alert[2]}warm`);
  }
  Bun.gc(true);
  const before = heapStats();
  const start = performance.now();
  let matched = 0;
  let clients = 0;
  for (const [severity, source, name] of alerts) {
    const result = matcher.match(severity, source, name);
    if (result.length > 0) matched++;
    clients += result.length;
  }
  const elapsedMs = performance.now() - start;
  const after = heapStats();
  return {
    alertsPerSecond: alerts.length / (elapsedMs / 1000),
    matchedShare: matched / alerts.length,
    clientsPerAlert: clients / alerts.length,
    objectsPerAlert: Math.max(0, after.objectCount - before.objectCount) / alerts.length,
    bytesPerAlert: Math.max(0, after.heapSize - before.heapSize) / alerts.length,
  };
}

function heapUsedBytes(): number {
  Bun.gc(true);
  return heapStats().heapSize;
}

const fmt = (value: number, digits = 0) => value.toLocaleString("en-US", { maximumFractionDigits: digits });
const millions = (value: number) => `${(value / 1e6).toFixed(2)}M`;

/** A rule set where one alert hits all 7 patterns, each with its own client. */
function worstCaseRules(base: Rule[]): { rules: Rule[]; alert: Alert } {
  const random = prng(77);
  const extra: Rule[] = [];
  for (let mask = 1; mask < 8; mask++) {
    extra.push({
      ruleId: randomUuid(random),
      clientId: randomUuid(random),
      severity: mask & 4 ? 4 : 0,
      source: mask & 2 ? "source-worst" : "*",
      name: mask & 1 ? "alert-worst" : "*",
    });
  }
  return { rules: [...base, ...extra], alert: [4, "source-worst", "alert-worst"] };
}

if (import.meta.main) {
  const rows: string[][] = [];
  const header = [
    "rules",
    "stream",
    "compile ms",
    "matcher heap MB",
    "alerts/s",
    "matched",
    "clients/alert",
    "objects/alert",
    "bytes/alert",
  ];
  const stream = 200_000;
  for (const count of [10_000, 100_000, 1_000_000]) {
    let rules = realisticRules(count);
    const heapBefore = heapUsedBytes();
    let start = performance.now();
    let matcher = new CompiledMatcher(rules);
    const compileMs = performance.now() - start;
    const matcherHeapMb = (heapUsedBytes() - heapBefore) / 2 ** 20;
    const addRow = (label: string, result: RunResult, compile: string, heap: string) =>
      rows.push([
        fmt(count),
        label,
        compile,
        heap,
        millions(result.alertsPerSecond),
        `${fmt(result.matchedShare * 100, 1)}%`,
        fmt(result.clientsPerAlert, 2),
        fmt(result.objectsPerAlert, 3),
        fmt(result.bytesPerAlert, 1),
      ]);
    addRow("hit", run(matcher, alertStream(stream, 2, "hit")), fmt(compileMs), fmt(matcherHeapMb, 1));
    addRow("miss", run(matcher, alertStream(stream, 3, "miss")), "", "");
    const worst = worstCaseRules(rules);
    rules = worst.rules;
    start = performance.now();
    matcher = new CompiledMatcher(rules);
    const worstStream = Array.from(
      { length: stream },
      (): Alert => [4, `${worst.alert[1]}`, `${worst.alert[2]}`],
    );
    addRow("worst (7 patterns)", run(matcher, worstStream), fmt(performance.now() - start), "");
  }
  console.log(table(header, rows));

  const rules = realisticRules(10_000);
  const alerts = alertStream(20_000, 4, "hit");
  const compiled = run(new CompiledMatcher(rules), alerts);
  const reference = run(new ReferenceMatcher(rules), alerts);
  console.log(
    `\n10k rules, 20k hit alerts: compiled ${millions(compiled.alertsPerSecond)}/s, reference ${fmt(reference.alertsPerSecond)}/s, ratio ${fmt(compiled.alertsPerSecond / reference.alertsPerSecond)}x`,
  );
  const memory = process.memoryUsage();
  console.log(
    `process: rss ${fmt(memory.rss / 2 ** 20)} MB, heapUsed ${fmt(memory.heapUsed / 2 ** 20)} MB, heapStats().heapSize ${fmt(heapStats().heapSize / 2 ** 20)} MB`,
  );
  console.log("targets: >= 5M alerts/s at 1M rules on one core; compile of 1M rules < 1 s");
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((cell, i) => cell.padStart(widths[i] ?? 0)).join("  ");
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}
