/**
 * How many copies of a topic the cluster keeps: the replication factor and the matching
 * min.insync.replicas. Pure (no librdkafka), so `./dev` can render broker settings from it too.
 */
import type { TopicSpec } from "./admin.ts";

/**
 * min.insync.replicas for a replication factor: with acks=all a record is acknowledged once this
 * many replicas have it. 2 of 3 means losing any one broker loses no acknowledged record and stops
 * no producer; below 3 replicas there is no such choice, so 1 (Kafka's default).
 */
export function minInsyncReplicas(replicationFactor: number): number {
  return replicationFactor >= 3 ? 2 : 1;
}

/** `specs` with `replicationFactor` replicas each and min.insync.replicas to match. */
export function withReplication(specs: readonly TopicSpec[], replicationFactor: number): TopicSpec[] {
  const minInsync = String(minInsyncReplicas(replicationFactor));
  return specs.map((spec) => ({
    ...spec,
    replicationFactor,
    config: { ...spec.config, "min.insync.replicas": minInsync },
  }));
}
