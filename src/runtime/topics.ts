import type { TopicSpec } from "../kafka/index.ts";

/** The pipeline's topics. Stages take their actual names from config so tests can use their own. */
export const topicNames = {
  alertsNew: "alerts.new",
  ruleChanged: "rule.changed",
  alertsMatched: "alerts.matched",
  notificationsReady: "notifications.ready",
} as const;

/** Every consumed topic has one dead-letter topic beside it. */
export function deadLetterTopic(topic: string): string {
  return `${topic}.dlq`;
}

/** How long the event topics keep records (the aggregator's retention must outlast it). */
export const topicRetentionDays = 7;
const weekMs = topicRetentionDays * 86_400_000;

/** The topics `./dev topics` creates: the four event topics and their dead-letter topics. */
export function pipelineTopicSpecs(partitions: number): TopicSpec[] {
  const specs: TopicSpec[] = [];
  for (const name of Object.values(topicNames)) {
    // rule.changed is a change log keyed by rule_id: compaction keeps each rule's latest change,
    // so a consumer replaying it from the start sees every live rule without unbounded growth.
    const config: Record<string, string> =
      name === topicNames.ruleChanged
        ? {
            "cleanup.policy": "compact",
            "min.compaction.lag.ms": String(3600 * 1000),
            "retention.ms": String(weekMs),
          }
        : { "retention.ms": String(weekMs) };
    specs.push({ name, partitions, config });
    specs.push(deadLetterTopicSpec(name));
  }
  return specs;
}

/** The dead-letter topic of `topic`: kept longer, one partition, room for any source record. */
export function deadLetterTopicSpec(topic: string): TopicSpec {
  return {
    name: deadLetterTopic(topic),
    partitions: 1,
    // Larger than a source topic's default limit (1 MiB), so a dead letter with its added headers fits.
    config: { "retention.ms": String(4 * weekMs), "max.message.bytes": String(2 * 1024 * 1024) },
  };
}
