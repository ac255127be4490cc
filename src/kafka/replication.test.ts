import { expect, test } from "bun:test";
import { minInsyncReplicas, withReplication } from "./replication.ts";

test("two in-sync replicas from three replicas up, else one", () => {
  expect([1, 2, 3, 4, 5].map(minInsyncReplicas)).toEqual([1, 1, 2, 2, 2]);
});

test("withReplication sets the factor and min.insync.replicas and keeps the other config", () => {
  const specs = [
    { name: "a", partitions: 6, config: { "retention.ms": "1000" } },
    { name: "a.dlq", partitions: 1 },
  ];
  expect(withReplication(specs, 3)).toEqual([
    {
      name: "a",
      partitions: 6,
      replicationFactor: 3,
      config: { "retention.ms": "1000", "min.insync.replicas": "2" },
    },
    { name: "a.dlq", partitions: 1, replicationFactor: 3, config: { "min.insync.replicas": "2" } },
  ]);
  expect(specs[0]?.config).toEqual({ "retention.ms": "1000" }); // the input is not changed
});
