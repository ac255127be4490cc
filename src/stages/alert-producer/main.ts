/**
 * alert-producer, two commands:
 *   load [flags]  generate alerts into Kafka (or through ingest) at a given rate (flags.ts lists them; --help)
 *   serve         HTTP ingest: POST /api/v1/alerts (ours) and /api/v2/alerts (Alertmanager's API), each
 *                 request authorized by an ingest credential looked up in Postgres
 */
import { verifyIngestCredential } from "../../adapters/ingest-credentials.ts";
import { connectPostgres } from "../../adapters/postgres.ts";
import { Producer } from "../../kafka/index.ts";
import { ConfigError, envInt, envString } from "../../runtime/config.ts";
import { infraUrls } from "../../runtime/env.ts";
import { createLogger } from "../../runtime/log.ts";
import { createStageMetrics } from "../../runtime/metrics.ts";
import { exitOnSignal, startService } from "../../runtime/service.ts";
import { topicNames } from "../../runtime/topics.ts";
import { FlagError, type LoadOptions, parseLoadFlags, usage } from "./flags.ts";
import { createIngest } from "./ingest.ts";
import { loadCommand } from "./load.ts";

const logger = createLogger("alert-producer");
const [command, ...args] = process.argv.slice(2);

if (command === "load") {
  if (args.includes("--help")) {
    console.log(usage);
    process.exit(0);
  }
  let options: LoadOptions;
  try {
    options = parseLoadFlags(args, {
      brokers: infraUrls.kafkaBrokers,
      seed: crypto.getRandomValues(new Uint32Array(1))[0] as number,
      runId: `load-${Date.now().toString(36)}`,
      ingestCredential: process.env.INGEST_CREDENTIAL,
    });
  } catch (error) {
    if (!(error instanceof FlagError)) throw error;
    console.error(`alert-producer load: ${error.message}`);
    process.exit(2);
  }
  process.exit(await loadCommand(options, process.stdout, logger));
} else if (command === "serve") {
  let config: {
    port: number;
    topic: string;
    bodyLimitBytes: number;
    requestRate: { ratePerSecond: number; burst: number };
    sourceLabel: string;
    sendTimeoutMs: number;
  };
  try {
    config = {
      port: envInt("HTTP_PORT", 8081, { min: 0, max: 65_535 }),
      topic: envString("OUTPUT_TOPIC", topicNames.alertsNew),
      bodyLimitBytes: envInt("INGEST_BODY_LIMIT_BYTES", 1024 * 1024, { min: 1024, max: 64 * 1024 * 1024 }),
      // Generous: a stop for runaway senders, not for Alertmanager or batch use.
      requestRate: {
        ratePerSecond: envInt("INGEST_RATE_PER_SECOND", 500, { min: 1, max: 1_000_000 }),
        burst: envInt("INGEST_RATE_BURST", 1000, { min: 1, max: 1_000_000 }),
      },
      sourceLabel: envString("INGEST_SOURCE_LABEL", "instance"),
      sendTimeoutMs: envInt("INGEST_SEND_TIMEOUT_MS", 10_000, { min: 100, max: 300_000 }),
    };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    logger.error(error.message);
    process.exit(2);
  }
  const producer = new Producer({
    brokers: infraUrls.kafkaBrokers,
    clientId: "alert-producer",
    logger: logger.child("producer"),
    deliveryTimeoutMs: config.sendTimeoutMs,
  });
  const metrics = createStageMetrics("alert-producer");
  // One indexed lookup per request; a few connections serve thousands of requests a second.
  const sql = connectPostgres({ connectionsMax: 4 });
  const ingest = createIngest({
    send: (records) => producer.send(records),
    authenticate: (authorization) => verifyIngestCredential(sql, authorization),
    topic: config.topic,
    bodyLimitBytes: config.bodyLimitBytes,
    requestRate: config.requestRate,
    sourceLabel: config.sourceLabel,
    logger,
    metrics,
  });
  let ready = true;
  const service = startService({
    port: config.port,
    registry: metrics.registry,
    isReady: () => ready,
    routes: ingest.routes,
  });
  metrics.ready.set(1);
  logger.info("started", { httpPort: service.port, topic: config.topic, sourceLabel: config.sourceLabel });
  exitOnSignal(async () => {
    ready = false;
    metrics.ready.set(0);
    await ingest.drain(2500);
    await service.stop();
    await producer.close(2000);
    await sql.end({ timeout: 2 });
  }, logger);
} else {
  console.error(
    "usage: bun src/stages/alert-producer/main.ts load [flags] | serve  (load --help: the flags)",
  );
  process.exit(2);
}
