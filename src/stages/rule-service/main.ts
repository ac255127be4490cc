/** rule-service: the HTTP API for clients, rules and endpoints, plus the outbox relay to rule.changed. */
import { connectPostgres } from "../../adapters/postgres.ts";
import { allowListFromEnv } from "../../channels/ssrf.ts";
import { createConsole } from "../../console/server.ts";
import { Producer } from "../../kafka/index.ts";
import { ConfigError, envInt, envString } from "../../runtime/config.ts";
import { checkLibrdkafka, infraUrls } from "../../runtime/env.ts";
import { createLogger, logLevelSetting, logRank } from "../../runtime/log.ts";
import { createStageMetrics } from "../../runtime/metrics.ts";
import { exitOnSignal, settingsOrExit, startService } from "../../runtime/service.ts";
import { topicNames } from "../../runtime/topics.ts";
import { createRuleServiceApp } from "./app.ts";
import { adminTokenLengthMin } from "./auth.ts";
import { startOutboxRelay } from "./outbox-relay.ts";

/** Every setting is read before anything connects, so a bad one exits 2 naming it. */
const settings = settingsOrExit("rule-service", () => {
  checkLibrdkafka();
  return {
    logRank: logRank[logLevelSetting()],
    adminToken: adminTokenSetting(),
    topic: envString("RULE_CHANGED_TOPIC", topicNames.ruleChanged),
    httpPort: envInt("HTTP_PORT", 8080, { min: 0, max: 65_535 }),
    // Generous: a stop for runaway scripts, not for interactive or batch use.
    requestRate: {
      ratePerSecond: envInt("API_RATE_PER_SECOND", 200, { min: 1, max: 1_000_000 }),
      burst: envInt("API_RATE_BURST", 400, { min: 1, max: 1_000_000 }),
    },
    ssrfAllowList: allowListFromEnv(),
  };
});

function adminTokenSetting(): string {
  const adminToken = envString("ADMIN_TOKEN", "");
  if (adminToken.length >= adminTokenLengthMin) return adminToken;
  const problem = adminToken === "" ? "is required" : `is ${adminToken.length} characters`;
  throw new ConfigError(
    "ADMIN_TOKEN",
    `${problem}: set it to a secret of at least ${adminTokenLengthMin} characters`,
  );
}

const logger = createLogger("rule-service", settings.logRank);
const { adminToken, topic } = settings;
const sql = connectPostgres();
const producer = new Producer({
  brokers: infraUrls.kafkaBrokers,
  clientId: "rule-service",
  logger: logger.child("producer"),
});
const relay = await startOutboxRelay({
  sql,
  publish: (records) => producer.send(records.map((r) => ({ topic, key: r.key, value: r.value }))),
  onError: (error) => logger.warn("outbox relay: publish failed, will retry", { error }),
});
relay.failed.catch((error: unknown) => {
  logger.error("outbox relay stuck; exiting so a supervisor restarts the rule service", { error });
  process.exit(1);
});
const metrics = createStageMetrics("rule-service");
const app = createRuleServiceApp({
  sql,
  adminToken,
  requestRate: settings.requestRate,
  ssrfAllowList: settings.ssrfAllowList,
});
// The operator console at /console, with its own JSON routes under /api/v1/console (src/console),
// behind the API's authentication and rate limits.
const consoleApp = createConsole({ sql, gate: app.gate, producer, logger: logger.child("console") });
const service = startService({
  port: settings.httpPort,
  registry: metrics.registry,
  isReady: () => true,
  routes: { ...app.routes, ...consoleApp.routes },
  fetch: app.fetch,
});
logger.info("started", { httpPort: service.port, topic });
exitOnSignal(async () => {
  await service.stop();
  await consoleApp.stop();
  await relay.stop();
  await producer.close(2000);
  await sql.end({ timeout: 2 });
}, logger);
