/** Snapshot codec benchmark: `node_modules/.bin/bun bench/snapshot-codec.ts`. Target: 1M rules build+encode < 1 s, < 64 B/rule. */
import { create, toBinary } from "@bufbuild/protobuf";
import { buildSnapshot, decodeSnapshot, encodeSnapshot, snapshotRules } from "../src/core/snapshot.ts";
import { RulesSnapshotSchema } from "../src/gen/alerting/v1/rule_pb.ts";
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
  const [bytes, encodeMs] = time(() => encodeSnapshot(snapshot));
  const [decoded, decodeMs] = time(() => decodeSnapshot(bytes));
  const [, rulesMs] = time(() => snapshotRules(decoded));
  const message = create(RulesSnapshotSchema, {
    ...snapshot,
    ruleClient: Array.from(snapshot.ruleClient),
    ruleSeverity: Array.from(snapshot.ruleSeverity),
    ruleSource: Array.from(snapshot.ruleSource),
    ruleName: Array.from(snapshot.ruleName),
  });
  const [, toBinaryMs] = time(() => toBinary(RulesSnapshotSchema, message));
  rows.push([
    count.toLocaleString("en-US"),
    ms(buildMs),
    ms(encodeMs),
    ms(buildMs + encodeMs),
    ms(decodeMs),
    ms(rulesMs),
    ms(toBinaryMs),
    (bytes.length / count).toFixed(1),
  ]);
}
console.log(
  table(
    [
      "rules",
      "build ms",
      "encode ms",
      "build+encode ms",
      "decode+validate ms",
      "to rules ms",
      "toBinary ms",
      "bytes/rule",
    ],
    rows,
  ),
);
