/**
 * evaluator: alerts.new -> compiled rule matching -> one alerts.matched record per matching client,
 * or per route of it when its matched rules group differently (src/core/policy.ts).
 */

import { Counter, Gauge } from "prom-client";
import { connectRedis } from "../../adapters/redis.ts";
import { snapshotKeys } from "../../adapters/snapshot-store.ts";
import { envInt, envString } from "../../runtime/config.ts";
import { firstStageBatchWaitMs } from "../../runtime/consume-loop.ts";
import { settingsOrExit } from "../../runtime/service.ts";
import { runConsumerStage } from "../../runtime/stage.ts";
import { topicNames } from "../../runtime/topics.ts";
import { createEvaluatorProcessor } from "./processor.ts";
import { RuleBook } from "./rules.ts";

const settings = settingsOrExit("evaluator", () => ({
  inputTopic: envString("INPUT_TOPIC", topicNames.alertsNew),
  outputTopic: envString("OUTPUT_TOPIC", topicNames.alertsMatched),
  groupId: envString("GROUP_ID", "evaluator"),
  rulesKeyPrefix: envString("RULES_KEY_PREFIX", "rules:"),
  // The backstop to pub/sub: polled often, it was most of an idle evaluator's CPU.
  rulesPollIntervalMs: envInt("RULES_POLL_INTERVAL_MS", 1000, { min: 10, max: 60_000 }),
}));

await runConsumerStage({
  name: "evaluator",
  batchWaitMs: firstStageBatchWaitMs,
  outputTopics: [settings.outputTopic],
  topic: settings.inputTopic,
  groupId: settings.groupId,
  async createProcessor({ logger, metrics }) {
    const redis = connectRedis();
    const versionApplied = new Gauge({
      name: "rules_version_applied",
      help: "Rules snapshot version in force",
      registers: [metrics.registry],
    });
    const rulesLoaded = new Gauge({
      name: "rules_loaded",
      help: "Rules in the snapshot in force",
      registers: [metrics.registry],
    });
    const rules = new RuleBook(
      redis,
      snapshotKeys(settings.rulesKeyPrefix),
      logger.child("rules"),
      (loaded) => {
        versionApplied.set(Number(loaded.version));
        rulesLoaded.set(loaded.ruleCount);
      },
    );
    const malformedScopes = new Counter({
      name: "alerts_scope_malformed_total",
      help: "Alerts whose scope is neither empty, client:<uuid> nor shared:<name>: matched to no client",
      registers: [metrics.registry],
    });
    const silencedMatches = new Counter({
      name: "alerts_silenced_total",
      help: "Client matches an active silence of the client matched: recorded as SILENCED, not sent",
      registers: [metrics.registry],
    });
    const mutedMatches = new Counter({
      name: "alerts_muted_total",
      help: "Records (one per route of a client match) whose rule was inside one of its mute windows: recorded as SILENCED, not sent",
      registers: [metrics.registry],
    });
    await rules.start(settings.rulesPollIntervalMs);
    return {
      processor: createEvaluatorProcessor(rules, settings.outputTopic, {
        malformedScopes,
        silencedMatches,
        mutedMatches,
      }),
      // Without a snapshot there is nothing to match against: wait (not ready) instead of exiting.
      isReady: () => rules.current !== undefined,
      async close() {
        await rules.stop();
        redis.disconnect();
      },
    };
  },
});
