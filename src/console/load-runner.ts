/**
 * The console's load generator: the alert-producer's own LoadRun (same schedule, same alert stream,
 * same flag validation), run inside the rule-service process with a Producer of its own, one run at
 * a time, bounded in rate and duration, and cancellable. The console polls its progress.
 */
import { Producer } from "../kafka/index.ts";
import type { Logger } from "../runtime/log.ts";
import { FlagError, parseLoadFlags } from "../stages/alert-producer/flags.ts";
import { kafkaSender, LoadRun, type LoadSummary } from "../stages/alert-producer/load.ts";
import { type Progress, ratePerS } from "../stages/alert-producer/progress.ts";

export interface LoadRequest {
  rate: number;
  duration_s: number;
  severities?: string;
  sources?: string;
  names?: string;
  context?: string;
}

export interface LoadStatus {
  running: boolean;
  request: LoadRequest | null;
  run_id: string | null;
  topic: string;
  limits: { rate_max: number; duration_max_s: number };
  started_at: string | null;
  progress: (Progress & { rate_per_s: number; total: number }) | null;
  summary: LoadSummary | null;
  error: string | null;
}

export class LoadInputError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

export class LoadRunner {
  #run: LoadRun | undefined;
  #done: Promise<void> | undefined;
  #request: LoadRequest | null = null;
  #runId: string | null = null;
  #total = 0;
  #startedAt: Date | null = null;
  #summary: LoadSummary | null = null;
  #error: string | null = null;
  #lastProgress: Progress | null = null;

  constructor(
    private readonly options: {
      brokers: string;
      topic: string;
      rateMax: number;
      durationMaxS: number;
      logger: Logger;
    },
  ) {}

  status(): LoadStatus {
    const progress = this.#run ? this.#run.progress() : this.#lastProgress;
    return {
      running: this.#run !== undefined,
      request: this.#request,
      run_id: this.#runId,
      topic: this.options.topic,
      limits: { rate_max: this.options.rateMax, duration_max_s: this.options.durationMaxS },
      started_at: this.#startedAt?.toISOString() ?? null,
      progress: progress
        ? { ...progress, rate_per_s: ratePerS(progress.acknowledged, progress.elapsedMs), total: this.#total }
        : null,
      summary: this.#summary,
      error: this.#error,
    };
  }

  /** Starts a run; throws LoadInputError on bad input and Error("busy") when one is running. */
  start(request: LoadRequest): LoadStatus {
    if (this.#run) throw new Error("busy");
    const { rateMax, durationMaxS } = this.options;
    if (!(request.rate > 0 && request.rate <= rateMax)) {
      throw new LoadInputError("rate", `must be more than 0 and at most ${rateMax} alerts/s`);
    }
    if (!(request.duration_s > 0 && request.duration_s <= durationMaxS)) {
      throw new LoadInputError("duration_s", `must be more than 0 and at most ${durationMaxS} s`);
    }
    const runId = `console-${Date.now().toString(36)}`;
    const args = ["--rate", String(request.rate), "--duration", String(request.duration_s)];
    if (request.severities) args.push("--severities", request.severities);
    if (request.sources) args.push("--sources", request.sources);
    if (request.names) args.push("--names", request.names);
    if (request.context) args.push("--context", request.context);
    args.push("--topic", this.options.topic);
    let loadOptions: ReturnType<typeof parseLoadFlags>;
    try {
      loadOptions = parseLoadFlags(args, {
        brokers: this.options.brokers,
        seed: crypto.getRandomValues(new Uint32Array(1))[0] as number,
        runId,
      });
    } catch (error) {
      if (error instanceof FlagError) {
        const field = error.flag.replace(/^--/, "");
        throw new LoadInputError(field === "duration" ? "duration_s" : field, error.message);
      }
      throw error;
    }
    const producer = new Producer({
      brokers: this.options.brokers,
      clientId: "rule-service-console-load",
      logger: this.options.logger.child("load-producer"),
    });
    const run = new LoadRun(loadOptions, kafkaSender(producer, loadOptions.topic));
    this.#run = run;
    this.#request = request;
    this.#runId = runId;
    this.#total = loadOptions.count;
    this.#startedAt = new Date();
    this.#summary = null;
    this.#error = null;
    this.#lastProgress = null;
    this.options.logger.info("load run started", {
      runId,
      rate: request.rate,
      durationS: request.duration_s,
    });
    this.#done = run
      .run()
      .then(
        (summary) => {
          this.#summary = summary;
          this.options.logger.info("load run finished", { ...summary });
        },
        (error: unknown) => {
          this.#error = error instanceof Error ? error.message : String(error);
        },
      )
      .finally(async () => {
        this.#lastProgress = run.progress();
        this.#run = undefined;
        await producer.close(5000).catch(() => {});
      });
    return this.status();
  }

  /** Asks the run to stop sending; what was sent is still awaited. */
  stop(): LoadStatus {
    this.#run?.stop();
    return this.status();
  }

  async close(): Promise<void> {
    this.#run?.stop();
    await this.#done;
  }
}
