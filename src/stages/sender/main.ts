/** sender: notifications.ready -> claim under a lease -> deliver on every endpoint -> SENT/RETRY/FAILED. */
import { DeliveryStore, deliveryStoreSettings } from "../../adapters/delivery-store.ts";
import { GroupStore } from "../../adapters/group-store.ts";
import { connectPostgres } from "../../adapters/postgres.ts";
import { EmailChannel, type SmtpConfig, smtpSecurityModes } from "../../channels/email.ts";
import { HttpTransport } from "../../channels/http.ts";
import { SlackChannel } from "../../channels/slack.ts";
import { allowListFromEnv, SsrfGuard } from "../../channels/ssrf.ts";
import type { Channel, EndpointType } from "../../channels/types.ts";
import { WebhookChannel } from "../../channels/webhook.ts";
import {
  externalUrlLengthMax,
  webhookBodyBytesMaxDefault,
  webhookBodyBytesMin,
} from "../../core/group-payload.ts";
import { type LeaseTiming, leaseTimingProblem } from "../../core/lease.ts";
import { KeyedRateLimiter } from "../../core/rate-limit.ts";
import { defaultBackoffPolicy } from "../../core/retry.ts";
import { ConfigError, envInt, envOneOf, envString } from "../../runtime/config.ts";
import type { Logger } from "../../runtime/log.ts";
import { settingsOrExit } from "../../runtime/service.ts";
import { runConsumerStage } from "../../runtime/stage.ts";
import { topicNames } from "../../runtime/topics.ts";
import { Dispatcher } from "./dispatcher.ts";
import { createSenderProcessor } from "./processor.ts";
import { startScheduler } from "./scheduler.ts";

/** The allow list parsed now, so that a malformed CIDR stops the sender at start. */
function ssrfGuard(): SsrfGuard {
  try {
    return new SsrfGuard(allowListFromEnv());
  } catch (error) {
    if (error instanceof RangeError) throw new ConfigError("SSRF_ALLOW_CIDRS", error.message);
    throw error;
  }
}

/** Email is off without SMTP_HOST; with it, every SMTP_* setting is checked. */
function smtpSettings(): SmtpConfig | undefined {
  const host = envString("SMTP_HOST", "");
  if (host === "") return undefined;
  const user = envString("SMTP_USER", "");
  // Checked for presence only: the password itself is read by the channel, never kept in settings.
  if (user !== "" && envString("SMTP_PASSWORD", "") === "") {
    throw new ConfigError("SMTP_PASSWORD", "must be set when SMTP_USER is");
  }
  return {
    host,
    port: envInt("SMTP_PORT", 587, { min: 1, max: 65_535 }),
    security: envOneOf("SMTP_SECURITY", "starttls", smtpSecurityModes),
    auth: user === "" ? undefined : { user, password: { env: "SMTP_PASSWORD" } },
    from: envString("SMTP_FROM", "alerts@localhost"),
    timeoutMs: envInt("SMTP_TIMEOUT_MS", 10_000, { min: 100, max: 120_000 }),
    connectionsMax: envInt("SMTP_CONNECTIONS_MAX", 5, { min: 1, max: 100 }),
  };
}

/** Bounded, so that a group webhook's fixed fields always fit in its body bound. */
function externalUrl(): string {
  const url = envString("EXTERNAL_URL", "");
  if (url.length > externalUrlLengthMax) {
    throw new ConfigError(
      "EXTERNAL_URL",
      `must be at most ${externalUrlLengthMax} characters, got ${url.length}`,
    );
  }
  return url;
}

/**
 * The lease of a claimed notification or group send, and the longest a started delivery can take
 * (each channel's timeout bounds it): the lease must leave room for a delivery between its renewals
 * (src/core/lease.ts).
 */
function leaseTiming(httpTimeoutMs: number, smtp: SmtpConfig | undefined): LeaseTiming {
  const timing = {
    leaseMs: envInt("LEASE_MS", 30_000, { min: 1000, max: 3_600_000 }),
    deliveryTimeoutMs: Math.max(httpTimeoutMs, smtp?.timeoutMs ?? 0),
  };
  const problem = leaseTimingProblem(timing);
  if (problem !== undefined) throw new ConfigError("LEASE_MS", problem);
  return timing;
}

const settings = settingsOrExit("sender", () => {
  const httpTimeoutMs = envInt("HTTP_TIMEOUT_MS", 5000, { min: 100, max: 120_000 });
  const smtp = smtpSettings();
  return {
    inputTopic: envString("INPUT_TOPIC", topicNames.notificationsReady),
    groupId: envString("GROUP_ID", "sender"),
    ssrfGuard: ssrfGuard(),
    httpTimeoutMs,
    smtp,
    lease: leaseTiming(httpTimeoutMs, smtp),
    endpointLimits: {
      ratePerSecond: envInt("ENDPOINT_RATE_PER_SECOND", 50_000, { min: 1, max: 1_000_000 }),
      burst: envInt("ENDPOINT_BURST", 5000, { min: 1, max: 1_000_000 }),
      concurrencyMax: envInt("ENDPOINT_CONCURRENCY_MAX", 256, { min: 1, max: 10_000 }),
      queueMax: envInt("ENDPOINT_QUEUE_MAX", 20_000, { min: 0, max: 1_000_000 }),
    },
    backoffPolicy: {
      ...defaultBackoffPolicy,
      baseDelayMs: envInt("RETRY_BASE_DELAY_MS", defaultBackoffPolicy.baseDelayMs, {
        min: 1,
        max: 3_600_000,
      }),
      attemptsMax: envInt("DELIVERY_ATTEMPTS_MAX", defaultBackoffPolicy.attemptsMax, { min: 1, max: 100 }),
    },
    schedulerIntervalMs: envInt("SCHEDULER_INTERVAL_MS", 1000, { min: 10, max: 60_000 }),
    dispatchesInFlightMax: envInt("DISPATCHES_IN_FLIGHT_MAX", 4, { min: 1, max: 64 }),
    groupSendsPerPassMax: envInt("GROUP_SENDS_PER_PASS_MAX", 200, { min: 1, max: 10_000 }),
    groupRowsPerSendMax: envInt("GROUP_ROWS_PER_SEND_MAX", 10_000, { min: 1, max: 100_000 }),
    groupBodyBytesMax: envInt("GROUP_BODY_BYTES_MAX", webhookBodyBytesMaxDefault, {
      min: webhookBodyBytesMin,
      max: 64 * 1024 * 1024,
    }),
    externalUrl: externalUrl(),
  };
});

function createChannels(logger: Logger): Map<EndpointType, Channel> {
  const http = new HttpTransport({
    guard: settings.ssrfGuard,
    timeoutMs: settings.httpTimeoutMs,
    redirectsMax: 3,
    logger: logger.child("http"),
  });
  const channels = new Map<EndpointType, Channel>([
    ["webhook", new WebhookChannel(http, Date.now, settings.externalUrl, settings.groupBodyBytesMax)],
    ["slack", new SlackChannel(http)],
  ]);
  if (settings.smtp !== undefined) channels.set("email", new EmailChannel(settings.smtp));
  return channels;
}

await runConsumerStage({
  name: "sender",
  topic: settings.inputTopic,
  groupId: settings.groupId,
  // Processing includes waiting for a dispatch slot, which slow or rate-limited endpoints can make
  // long by design (backpressure): only a much longer stall counts as stuck.
  processTimeoutMs: 30 * 60_000,
  async createProcessor({ logger, processTimeoutMs }) {
    const sql = connectPostgres({ connectionsMax: 10, settings: deliveryStoreSettings });
    const store = new DeliveryStore(sql, settings.lease.leaseMs);
    const limiter = new KeyedRateLimiter(settings.endpointLimits);
    const channels = createChannels(logger);
    const groupStore = new GroupStore(sql, settings.lease.leaseMs, settings.groupRowsPerSendMax);
    const dispatcher = new Dispatcher(
      store,
      channels,
      limiter,
      settings.backoffPolicy,
      { lease: settings.lease, logger: logger.child("dispatch") },
      groupStore,
    );
    const scheduler = startScheduler(store, dispatcher, logger.child("scheduler"), {
      intervalMs: settings.schedulerIntervalMs,
      batchSizeMax: 500,
      passTimeoutMs: processTimeoutMs,
      dispatchesMax: settings.dispatchesInFlightMax,
      groups: { store: groupStore, sendsPerPassMax: settings.groupSendsPerPassMax },
    });
    const processor = createSenderProcessor(store, dispatcher, logger, settings.dispatchesInFlightMax);
    return {
      processor,
      failed: Promise.race([scheduler.failed, dispatcher.failed]),
      async close() {
        // What did not start is recorded as not sent and re-driven at once by another sender; what
        // is still in flight after this is re-driven after its lease.
        dispatcher.stopStarting();
        await Promise.all([processor.drain(2000), scheduler.stop(2000)]);
        for (const channel of channels.values()) await (channel as { close?: () => Promise<void> }).close?.();
        await sql.end({ timeout: 2 });
      },
    };
  },
});
