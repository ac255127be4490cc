/**
 * Snapshot codec benchmark: `node_modules/.bin/bun bench/snapshot-codec.ts`. Targets: 1M rules build+encode < 1 s
 * (the updater's build+encode+write < 2 s), < 64 B/rule. Rules are bench/match.ts's workload, with fresh
 * strings per row as a database driver returns them. "build" is buildSnapshot from Rule objects; "COPY
 * parse" is the rule-updater's build, RuleCopyParser into a SnapshotBuilder, over the same rules' binary
 * COPY output made in-process and fed in 64 KB pieces (the CPU it adds to Postgres and postgres.js).
 * "evaluator load" is the evaluator's path from bytes to a matcher: decodeSnapshot +
 * CompiledMatcher.fromSnapshot; "old load" is decode + snapshotRules + new CompiledMatcher(rules), the path
 * it replaces.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { RuleCopyParser } from "../src/adapters/rules-copy.ts";
import { CompiledMatcher } from "../src/core/matching/compiled.ts";
import {
  buildSnapshot,
  decodeSnapshot,
  encodeSnapshot,
  SnapshotBuilder,
  snapshotRules,
} from "../src/core/snapshot.ts";
import { RulesSnapshotSchema } from "../src/gen/alerting/v1/rule_pb.ts";
import { copyBytes } from "../test/support/rules-copy.ts";
import { realisticRules, table } from "./match.ts";

const time = <T>(work: () => T): [T, number] => {
  const start = performance.now();
  const result = work();
  return [result, performance.now() - start];
};
const ms = (value: number) => value.toFixed(0);

const rows: string[][] = [];
for (const count of [10_000, 100_000, 1_000_000]) {
  const rules = realisticRules(count);
  const [snapshot, buildMs] = time(() => buildSnapshot(rules, 42n, BigInt(Date.now())));
  const copied = copyBytes(rules);
  const [, copyParseMs] = time(() => {
    const builder = new SnapshotBuilder();
    const parser = new RuleCopyParser(builder);
    for (let at = 0; at < copied.length; at += 65_536) parser.push(copied.subarray(at, at + 65_536));
    parser.end();
    return builder.build(42n, BigInt(Date.now()));
  });
  const [bytes, encodeMs] = time(() => encodeSnapshot(snapshot));
  const [decoded, decodeMs] = time(() => decodeSnapshot(bytes));
  const [decodedRules, rulesMs] = time(() => snapshotRules(decoded));
  const [, fromRulesMs] = time(() => new CompiledMatcher(decodedRules));
  const [, fromSnapshotMs] = time(() => CompiledMatcher.fromSnapshot(decoded));
  const message = create(RulesSnapshotSchema, {
    ...snapshot,
    ruleClient: Array.from(snapshot.ruleClient),
    ruleSeverity: Array.from(snapshot.ruleSeverity),
    ruleSource: Array.from(snapshot.ruleSource),
    ruleName: Array.from(snapshot.ruleName),
    grantClient: Array.from(snapshot.grantClient),
  });
  const [, toBinaryMs] = time(() => toBinary(RulesSnapshotSchema, message));
  rows.push([
    count.toLocaleString("en-US"),
    ms(buildMs),
    ms(copyParseMs),
    ms(encodeMs),
    ms(buildMs + encodeMs),
    ms(decodeMs),
    ms(rulesMs),
    ms(fromSnapshotMs),
    ms(decodeMs + fromSnapshotMs),
    ms(decodeMs + rulesMs + fromRulesMs),
    ms(toBinaryMs),
    (bytes.length / count).toFixed(1),
  ]);
}
console.log(
  table(
    [
      "rules",
      "build ms",
      "COPY parse ms",
      "encode ms",
      "build+encode ms",
      "decode+validate ms",
      "to rules ms",
      "fromSnapshot ms",
      "evaluator load ms",
      "old load ms",
      "toBinary ms",
      "bytes/rule",
    ],
    rows,
  ),
);
