import { expect, test } from "bun:test";
import { compareTopics } from "./topic-check.ts";

const requested = [
  { name: "a", partitions: 6, replicationFactor: 3 },
  { name: "a.dlq", partitions: 1, replicationFactor: 3 },
];

test("topics as requested, or with more replicas, differ in nothing", () => {
  const described = new Map([
    ["a", { partitions: 6, replicationFactor: 3 }],
    ["a.dlq", { partitions: 1, replicationFactor: 5 }],
  ]);
  expect(compareTopics(requested, described)).toEqual({
    underReplicated: [],
    partitionsDiffer: [],
    missing: [],
  });
});

test("fewer replicas than requested are under-replicated, each topic named with both figures", () => {
  const described = new Map([
    ["a", { partitions: 6, replicationFactor: 1 }],
    ["a.dlq", { partitions: 1, replicationFactor: 2 }],
  ]);
  expect(compareTopics(requested, described).underReplicated).toEqual([
    { name: "a", replicationFactor: 1, requested: 3 },
    { name: "a.dlq", replicationFactor: 2, requested: 3 },
  ]);
});

test("fewer or more partitions than requested differ, apart from the replication factor", () => {
  const described = new Map([
    ["a", { partitions: 3, replicationFactor: 3 }],
    ["a.dlq", { partitions: 2, replicationFactor: 3 }],
  ]);
  expect(compareTopics(requested, described)).toEqual({
    underReplicated: [],
    partitionsDiffer: [
      { name: "a", partitions: 3, requested: 6 },
      { name: "a.dlq", partitions: 2, requested: 1 },
    ],
    missing: [],
  });
});

test("a topic the cluster did not describe is missing, not compared", () => {
  const described = new Map([["a", { partitions: 6, replicationFactor: 3 }]]);
  expect(compareTopics(requested, described)).toEqual({
    underReplicated: [],
    partitionsDiffer: [],
    missing: ["a.dlq"],
  });
});

test("without a requested replication factor one replica is enough, as createTopics defaults", () => {
  const described = new Map([["b", { partitions: 2, replicationFactor: 1 }]]);
  expect(compareTopics([{ name: "b", partitions: 2 }], described).underReplicated).toEqual([]);
});
