/**
 * The `load` command: sends generated alerts on an absolute schedule (schedule.ts), to Kafka or through
 * HTTP ingest, counts what was accepted, shows progress and ends with one JSON summary line.
 */
import { severityName } from "../../core/severity.ts";
import { Producer } from "../../kafka/index.ts";
import type { Logger } from "../../runtime/log.ts";
import { type Alert, alertRecord, createAlertStream } from "./alerts.ts";
import type { LoadOptions } from "./flags.ts";
import { type Output, type Progress, ratePerS, startProgress } from "./progress.ts";
import { backlog, remainingMs, type Schedule, sleepMs, tickCount } from "./schedule.ts";

/** Records sent and not yet acknowledged, at most: beyond it the run waits and falls visibly behind. */
const inFlightMax = 100_000;
const wakeIntervalMaxMs = 250;
/** How long to wait for acknowledgements once everything is sent (librdkafka's own timeout is 30 s). */
const drainTimeoutMs = 60_000;

export interface LoadSummary {
  event: "summary";
  sent: number;
  acknowledged: number;
  errors: number;
  durationMs: number;
  achievedRatePerS: number;
  targetRatePerS: number;
  /** The largest backlog seen: how far behind the schedule the run fell at worst. */
  backlogMax: number;
  interrupted: boolean;
  firstError: string | null;
}

/** Where a run's alerts go; `send` resolves once every alert of the batch was accepted. */
export interface AlertSender {
  send(alerts: readonly Alert[]): Promise<void>;
}

/** Straight to Kafka as AlertNew records on `topic`: accepted = acknowledged by the broker. */
export function kafkaSender(producer: Pick<Producer, "send">, topic: string): AlertSender {
  return { send: (alerts) => producer.send(alerts.map((alert) => alertRecord(alert, topic))) };
}

/** Alerts per ingest request: far below ingest's 10,000 and its 1 MB body at the generator's sizes. */
const ingestBatchMax = 1000;
const ingestTimeoutMs = 30_000;

/**
 * Through HTTP ingest, as POST /api/v1/alerts batches with `credential` as the bearer token: accepted =
 * ingest's 200 (it answers only once Kafka acknowledged). The alerts carry the credential's scope.
 */
export function ingestSender(url: string, credential: string): AlertSender {
  const endpoint = new URL("/api/v1/alerts", url);
  const post = async (alerts: readonly Alert[]) => {
    const response = await fetch(endpoint, {
      method: "POST",
      headers: { authorization: `Bearer ${credential}`, "content-type": "application/json" },
      body: JSON.stringify(alerts.map(v1Alert)),
      signal: AbortSignal.timeout(ingestTimeoutMs),
    });
    const answer = await response.text();
    if (response.status !== 200)
      throw new Error(`ingest answered ${response.status}: ${answer.slice(0, 300)}`);
  };
  return {
    async send(alerts) {
      const requests: Promise<void>[] = [];
      for (let at = 0; at < alerts.length; at += ingestBatchMax)
        requests.push(post(alerts.slice(at, at + ingestBatchMax)));
      await Promise.all(requests);
    },
  };
}

/** An alert in ingest's v1 format (ingest-v1.ts). */
function v1Alert(alert: Alert) {
  return {
    ...(alert.alertId === "" ? {} : { alert_id: alert.alertId }),
    severity: severityName(alert.severity),
    source: alert.source,
    name: alert.name,
    context: alert.context,
    event_time: alert.eventTimeUnixMs,
  };
}

export class LoadRun {
  readonly #options: LoadOptions;
  readonly #sender: AlertSender;
  readonly #nextAlert: ReturnType<typeof createAlertStream>;
  readonly #pending = new Set<Promise<void>>();
  #schedule: Schedule | undefined;
  #sent = 0;
  #acknowledged = 0;
  #errors = 0;
  #backlogMax = 0;
  #firstError: string | null = null;
  #stopped = false;

  constructor(options: LoadOptions, sender: AlertSender) {
    this.#options = options;
    this.#sender = sender;
    this.#nextAlert = createAlertStream(options);
  }

  /** Ends the run early (Ctrl-C): nothing more is sent, what was sent is still awaited. */
  stop(): void {
    this.#stopped = true;
  }

  progress(): Progress {
    const nowMs = performance.now();
    const schedule = this.#schedule;
    return {
      sent: this.#sent,
      acknowledged: this.#acknowledged,
      errors: this.#errors,
      backlog: schedule ? backlog(schedule, nowMs, this.#sent) : 0,
      elapsedMs: schedule ? nowMs - schedule.startMs : 0,
      remainingMs: schedule ? remainingMs(schedule, nowMs, this.#sent) : undefined,
    };
  }

  async run(): Promise<LoadSummary> {
    const { ratePerS: targetRatePerS, count, burstMax } = this.#options;
    const schedule: Schedule = {
      startMs: performance.now(),
      ratePerS: targetRatePerS,
      total: count,
      burstMax,
    };
    this.#schedule = schedule;
    while (this.#sent < count && !this.#stopped) {
      const nowMs = performance.now();
      this.#backlogMax = Math.max(this.#backlogMax, backlog(schedule, nowMs, this.#sent));
      const room = inFlightMax - (this.#sent - this.#acknowledged - this.#errors);
      const batchSize = Math.min(tickCount(schedule, nowMs, this.#sent), room);
      if (batchSize > 0) this.#sendBatch(batchSize);
      // With no room, poll for acknowledgements every millisecond; otherwise follow the schedule,
      // waking at least every wakeIntervalMaxMs so that a slow run still notices Ctrl-C promptly.
      const waitMs =
        room <= 0 ? 1 : Math.min(sleepMs(schedule, performance.now(), this.#sent), wakeIntervalMaxMs);
      await Bun.sleep(waitMs);
    }
    const drained = Promise.allSettled(this.#pending);
    await Promise.race([drained, Bun.sleep(drainTimeoutMs)]);
    const durationMs = performance.now() - schedule.startMs;
    return {
      event: "summary",
      sent: this.#sent,
      acknowledged: this.#acknowledged,
      errors: this.#errors,
      durationMs: Math.round(durationMs),
      achievedRatePerS: ratePerS(this.#acknowledged, durationMs),
      targetRatePerS,
      backlogMax: this.#backlogMax,
      interrupted: this.#stopped,
      firstError: this.#firstError,
    };
  }

  #sendBatch(size: number): void {
    const alerts: Alert[] = [];
    for (let i = 0; i < size; i++) alerts.push(this.#nextAlert());
    this.#sent += size;
    const sending: Promise<void> = this.#sender.send(alerts).then(
      () => {
        this.#acknowledged += size;
      },
      (error: unknown) => {
        this.#errors += size;
        this.#firstError ??= error instanceof Error ? error.message : String(error);
      },
    );
    this.#pending.add(sending);
    void sending.finally(() => this.#pending.delete(sending));
  }
}

/** Success: every alert sent was acknowledged, and a finite run was not cut short. */
export function succeeded(summary: LoadSummary, options: LoadOptions): boolean {
  const complete = summary.sent === options.count || (!Number.isFinite(options.count) && summary.interrupted);
  return complete && summary.errors === 0 && summary.acknowledged === summary.sent;
}

/** Runs the whole command and returns the process exit code: 0 on success, 1 otherwise. */
export async function loadCommand(options: LoadOptions, output: Output, logger: Logger): Promise<number> {
  let producer: Producer | undefined;
  let sender: AlertSender;
  if (options.ingest) sender = ingestSender(options.ingest.url, options.ingest.credential);
  else {
    producer = new Producer({
      brokers: options.brokers,
      clientId: "alert-producer-load",
      logger: logger.child("producer"),
    });
    sender = kafkaSender(producer, options.topic);
  }
  const run = new LoadRun(options, sender);
  // Ctrl-C ends the run gracefully; a second one exits at once.
  let interrupts = 0;
  const onSignal = () => {
    if (++interrupts > 1) process.exit(130);
    run.stop();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  output.write(
    `${JSON.stringify({
      event: "start",
      ...(options.ingest ? { ingest: options.ingest.url } : { topic: options.topic, scope: options.scope }),
      ratePerS: options.ratePerS,
      count: Number.isFinite(options.count) ? options.count : "forever",
      burstMax: options.burstMax,
      seed: options.seed,
      runId: options.runId,
      hashedIds: options.hashedIds,
    })}\n`,
  );
  const stopProgress = startProgress(output, () => run.progress());
  const summary = await run.run();
  stopProgress();
  output.write(`${JSON.stringify(summary)}\n`);
  await producer?.close(5000);
  return succeeded(summary, options) ? 0 : 1;
}
