/**
 * How existing topics differ from what `./dev topics` asks for. Pure, so the comparison is tested
 * without a broker; src/setup/topics.ts reads the cluster and reports.
 */
import type { TopicDescription, TopicSpec } from "../kafka/index.ts";

export interface TopicMismatches {
  /** Fewer replicas than requested: Kafka cannot raise a topic's replication factor in place. */
  underReplicated: { name: string; replicationFactor: number; requested: number }[];
  /** A partition count other than the requested one: it bounds how many consumers get work. */
  partitionsDiffer: { name: string; partitions: number; requested: number }[];
  /** Requested topics the cluster did not describe, so nothing about them is known. */
  missing: string[];
}

/** Compares each of `requested` with its description; more replicas than requested is fine. */
export function compareTopics(
  requested: readonly TopicSpec[],
  described: ReadonlyMap<string, TopicDescription>,
): TopicMismatches {
  const mismatches: TopicMismatches = { underReplicated: [], partitionsDiffer: [], missing: [] };
  for (const spec of requested) {
    const actual = described.get(spec.name);
    if (!actual) {
      mismatches.missing.push(spec.name);
      continue;
    }
    // The same default as Admin.createTopics.
    const replicationFactor = spec.replicationFactor ?? 1;
    if (actual.replicationFactor < replicationFactor)
      mismatches.underReplicated.push({
        name: spec.name,
        replicationFactor: actual.replicationFactor,
        requested: replicationFactor,
      });
    if (actual.partitions !== spec.partitions)
      mismatches.partitionsDiffer.push({
        name: spec.name,
        partitions: actual.partitions,
        requested: spec.partitions,
      });
  }
  return mismatches;
}
