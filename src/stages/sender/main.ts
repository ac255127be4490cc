/** sender: notifications.ready -> claim under a lease -> deliver on every endpoint -> SENT/RETRY/FAILED. */
import { DeliveryStore, deliveryStoreSettings } from "../../adapters/delivery-store.ts";
import { connectPostgres } from "../../adapters/postgres.ts";
import { EmailChannel } from "../../channels/email.ts";
import { HttpTransport } from "../../channels/http.ts";
import { SlackChannel } from "../../channels/slack.ts";
import { allowListFromEnv, SsrfGuard } from "../../channels/ssrf.ts";
import type { Channel, EndpointType } from "../../channels/types.ts";
import { WebhookChannel } from "../../channels/webhook.ts";
import { KeyedRateLimiter } from "../../core/rate-limit.ts";
import { defaultBackoffPolicy } from "../../core/retry.ts";
import { envInt, envString } from "../../runtime/config.ts";
import type { Logger } from "../../runtime/log.ts";
import { runConsumerStage } from "../../runtime/stage.ts";
import { topicNames } from "../../runtime/topics.ts";
import { Dispatcher } from "./dispatcher.ts";
import { createSenderProcessor } from "./processor.ts";
import { startScheduler } from "./scheduler.ts";

function createChannels(logger: Logger): Map<EndpointType, Channel> {
  const guard = new SsrfGuard(allowListFromEnv());
  const http = new HttpTransport({
    guard,
    timeoutMs: envInt("HTTP_TIMEOUT_MS", 5000, { min: 100, max: 120_000 }),
    redirectsMax: 3,
    logger: logger.child("http"),
  });
  const channels = new Map<EndpointType, Channel>([
    ["webhook", new WebhookChannel(http)],
    ["slack", new SlackChannel(http)],
  ]);
  const smtpHost = envString("SMTP_HOST", "");
  if (smtpHost !== "") {
    const user = envString("SMTP_USER", "");
    channels.set(
      "email",
      new EmailChannel({
        host: smtpHost,
        port: envInt("SMTP_PORT", 587, { min: 1, max: 65_535 }),
        security: envString("SMTP_SECURITY", "starttls") as "tls" | "starttls" | "none",
        auth: user === "" ? undefined : { user, password: { env: "SMTP_PASSWORD" } },
        from: envString("SMTP_FROM", "alerts@localhost"),
        timeoutMs: envInt("SMTP_TIMEOUT_MS", 10_000, { min: 100, max: 120_000 }),
        connectionsMax: envInt("SMTP_CONNECTIONS_MAX", 5, { min: 1, max: 100 }),
      }),
    );
  }
  return channels;
}

await runConsumerStage({
  name: "sender",
  topic: envString("INPUT_TOPIC", topicNames.notificationsReady),
  groupId: envString("GROUP_ID", "sender"),
  // Processing includes waiting for a dispatch slot, which slow or rate-limited endpoints can make
  // long by design (backpressure): only a much longer stall counts as stuck.
  processTimeoutMs: 30 * 60_000,
  async createProcessor({ logger, processTimeoutMs }) {
    const sql = connectPostgres({ connectionsMax: 10, settings: deliveryStoreSettings });
    const store = new DeliveryStore(sql, envInt("LEASE_MS", 30_000, { min: 1000, max: 3_600_000 }));
    const limiter = new KeyedRateLimiter({
      ratePerSecond: envInt("ENDPOINT_RATE_PER_SECOND", 50_000, { min: 1, max: 1_000_000 }),
      burst: envInt("ENDPOINT_BURST", 5000, { min: 1, max: 1_000_000 }),
      concurrencyMax: envInt("ENDPOINT_CONCURRENCY_MAX", 256, { min: 1, max: 10_000 }),
      queueMax: envInt("ENDPOINT_QUEUE_MAX", 20_000, { min: 0, max: 1_000_000 }),
    });
    const policy = {
      ...defaultBackoffPolicy,
      baseDelayMs: envInt("RETRY_BASE_DELAY_MS", defaultBackoffPolicy.baseDelayMs, {
        min: 1,
        max: 3_600_000,
      }),
      attemptsMax: envInt("DELIVERY_ATTEMPTS_MAX", defaultBackoffPolicy.attemptsMax, { min: 1, max: 100 }),
    };
    const channels = createChannels(logger);
    const dispatcher = new Dispatcher(store, channels, limiter, policy);
    const scheduler = startScheduler(store, dispatcher, logger.child("scheduler"), {
      intervalMs: envInt("SCHEDULER_INTERVAL_MS", 1000, { min: 10, max: 60_000 }),
      batchSizeMax: 500,
      passTimeoutMs: processTimeoutMs,
    });
    const processor = createSenderProcessor(
      store,
      dispatcher,
      logger,
      envInt("DISPATCHES_IN_FLIGHT_MAX", 4, { min: 1, max: 64 }),
    );
    return {
      processor,
      failed: scheduler.failed,
      async close() {
        await processor.drain(1000);
        await scheduler.stop();
        for (const channel of channels.values()) await (channel as { close?: () => Promise<void> }).close?.();
        await sql.end({ timeout: 2 });
      },
    };
  },
});
