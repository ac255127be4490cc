/**
 * The `load` command's flags: parsed and validated up front, so a bad flag stops the run before
 * anything is sent, with a message naming the flag.
 */
import { isScope } from "../../core/matching/scope.ts";
import { SEVERITY_MIN, SEVERITY_NAMES } from "../../core/severity.ts";
import { topicNames } from "../../runtime/topics.ts";
import type { Weighted } from "./random.ts";
import { defaultBurstMax } from "./schedule.ts";

export class FlagError extends Error {
  constructor(
    readonly flag: string,
    reason: string,
  ) {
    super(`${flag}: ${reason}`);
    this.name = "FlagError";
  }
}

export interface LoadOptions {
  ratePerS: number;
  /** Alerts to send; Infinity with --forever. */
  count: number;
  burstMax: number;
  severities: Weighted<number>[];
  sources: Weighted<string>[];
  names: Weighted<string>[];
  seed: number;
  runId: string;
  context: Record<string, string>;
  hashedIds: boolean;
  /** The scope stamped on every alert sent to Kafka; "" (internal) unless --scope. */
  scope: string;
  topic: string;
  brokers: string;
  /** With --ingest: send through HTTP ingest with this credential instead of to Kafka. */
  ingest: { url: string; credential: string } | undefined;
}

/**
 * Values that are not fixed: the environment's brokers and ingest credential (INGEST_CREDENTIAL: a secret
 * stays out of process listings), and a fresh seed and run id per run.
 */
export interface LoadDefaults {
  brokers: string;
  seed: number;
  runId: string;
  ingestCredential?: string;
}

export const usage = `usage: bun src/stages/alert-producer/main.ts load [flags]

  --rate N             alerts per second (default 1000)
  --count N            send N alerts            } exactly one of these three
  --duration SECONDS   send rate x SECONDS      } (the run may take longer
  --forever            until Ctrl-C             }  if the broker cannot keep up)
  --burst N            most alerts sent in one tick when catching up (default: 50 ms worth)
  --severities LIST    weighted severities, e.g. HIGH:3,LOW:1 (default: all four, equally)
  --sources LIST       weighted sources, e.g. api:5,db:1 (default api,db,web)
  --names LIST         weighted names, e.g. cpu:1,disk:1 (default cpu,disk,memory)
  --context LIST       labels added to every alert, e.g. env=load,team=infra
  --seed N             PRNG seed (0..4294967295); the same seed and flags give the same alerts
  --run-id ID          prefix of the alert ids <run-id>-<seq> (default: random)
  --hashed-ids         send empty alert ids: the evaluator derives them from
                       (severity, source, name, event time), so equal alerts in one ms dedupe
  --scope SCOPE        the scope of every alert: client:<client id> or shared:<name>; default none,
                       an internal stream that every client's rules match
  --topic NAME         default ${topicNames.alertsNew}
  --brokers LIST       default KAFKA_BROKERS or 127.0.0.1:9092
  --ingest URL         send through HTTP ingest at URL (e.g. http://127.0.0.1:8081) instead of to
                       Kafka, as POST /api/v1/alerts batches authorized by the ingest credential in
                       INGEST_CREDENTIAL, whose scope the alerts then carry (no --scope, --topic, --brokers)

In LIST, a weight follows the last ':' and defaults to 1.`;

const textLengthMax = 1024;
const listEntriesMax = 10_000;
const booleanFlags = new Set(["--forever", "--hashed-ids"]);
const valueFlags = new Set([
  "--rate",
  "--count",
  "--duration",
  "--burst",
  "--severities",
  "--sources",
  "--names",
  "--context",
  "--seed",
  "--run-id",
  "--topic",
  "--brokers",
  "--scope",
  "--ingest",
]);

/** Parses `load`'s arguments (after the command); throws FlagError naming the first bad flag. */
export function parseLoadFlags(args: readonly string[], defaults: LoadDefaults): LoadOptions {
  const raw = collectFlags(args);
  const ratePerS = raw.has("--rate") ? number(raw, "--rate", { min: 0.001, max: 1_000_000 }) : 1000;
  const runLength = ["--count", "--duration", "--forever"].filter((flag) => raw.has(flag));
  if (runLength.length !== 1) {
    throw new FlagError(
      runLength[1] ?? "--count",
      runLength.length === 0
        ? "one of --count, --duration or --forever is required"
        : `cannot be combined with ${runLength[0]}`,
    );
  }
  let count = Number.POSITIVE_INFINITY;
  if (raw.has("--count")) count = integer(raw, "--count", { min: 1, max: 1_000_000_000 });
  if (raw.has("--duration")) {
    count = Math.round(ratePerS * number(raw, "--duration", { min: 0.001, max: 31 * 24 * 3600 }));
    if (count < 1) throw new FlagError("--duration", "rate x duration is less than one alert");
  }
  return {
    ratePerS,
    count,
    burstMax: raw.has("--burst")
      ? integer(raw, "--burst", { min: 1, max: 1_000_000 })
      : defaultBurstMax(ratePerS),
    severities: weightedList(raw.get("--severities") ?? SEVERITY_NAMES.join(","), "--severities", severity),
    sources: weightedList(raw.get("--sources") ?? "api,db,web", "--sources", (value) =>
      text(value, "--sources"),
    ),
    names: weightedList(raw.get("--names") ?? "cpu,disk,memory", "--names", (value) =>
      text(value, "--names"),
    ),
    seed: raw.has("--seed") ? integer(raw, "--seed", { min: 0, max: 0xffff_ffff }) : defaults.seed,
    runId: raw.has("--run-id") ? runId(raw.get("--run-id") as string) : defaults.runId,
    context: raw.has("--context") ? contextList(raw.get("--context") as string) : {},
    hashedIds: raw.has("--hashed-ids"),
    scope: raw.has("--scope") ? scope(raw.get("--scope") as string) : "",
    topic: raw.has("--topic") ? text(raw.get("--topic") as string, "--topic") : topicNames.alertsNew,
    brokers: raw.has("--brokers") ? text(raw.get("--brokers") as string, "--brokers") : defaults.brokers,
    ingest: raw.has("--ingest") ? ingest(raw, defaults.ingestCredential) : undefined,
  };
}

function scope(value: string): string {
  if (!isScope(value)) throw new FlagError("--scope", "expected client:<client id> or shared:<name>");
  return value;
}

function ingest(raw: Map<string, string>, credential: string | undefined): LoadOptions["ingest"] {
  const kafkaOnly = ["--scope", "--topic", "--brokers"].find((flag) => raw.has(flag));
  if (kafkaOnly)
    throw new FlagError(kafkaOnly, "cannot be combined with --ingest (the credential sets the scope)");
  const url = text(raw.get("--ingest") as string, "--ingest");
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol))
    throw new FlagError("--ingest", `expected an http(s) URL, got ${JSON.stringify(url)}`);
  if (!credential) throw new FlagError("--ingest", "needs the ingest credential in INGEST_CREDENTIAL");
  return { url, credential };
}

/** `--flag value`, `--flag=value` and boolean `--flag`; rejects unknown, repeated and stray arguments. */
function collectFlags(args: readonly string[]): Map<string, string> {
  const raw = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const equals = arg.indexOf("=");
    const flag = equals > 0 ? arg.slice(0, equals) : arg;
    if (!flag.startsWith("--")) throw new FlagError(arg, "unexpected argument (flags start with --)");
    if (raw.has(flag)) throw new FlagError(flag, "given more than once");
    if (booleanFlags.has(flag)) {
      if (equals > 0) throw new FlagError(flag, "takes no value");
      raw.set(flag, "");
    } else if (valueFlags.has(flag)) {
      const value = equals > 0 ? arg.slice(equals + 1) : args[++i];
      if (value === undefined || value === "") throw new FlagError(flag, "needs a value");
      raw.set(flag, value);
    } else {
      throw new FlagError(flag, "unknown flag (see --help)");
    }
  }
  return raw;
}

function number(raw: Map<string, string>, flag: string, bounds: { min: number; max: number }): number {
  const text = raw.get(flag) as string;
  const value = Number(text);
  if (!/^[0-9.eE+-]+$/.test(text) || !Number.isFinite(value))
    throw new FlagError(flag, `expected a number, got ${JSON.stringify(text)}`);
  if (value < bounds.min || value > bounds.max)
    throw new FlagError(flag, `must be within ${bounds.min}..${bounds.max}, got ${value}`);
  return value;
}

function integer(raw: Map<string, string>, flag: string, bounds: { min: number; max: number }): number {
  const value = number(raw, flag, bounds);
  if (!Number.isInteger(value)) throw new FlagError(flag, `expected an integer, got ${value}`);
  return value;
}

function text(value: string, flag: string): string {
  if (value.length > textLengthMax) throw new FlagError(flag, `longer than ${textLengthMax} characters`);
  return value;
}

/** Severity names, case-insensitive on the command line: high -> 3. */
function severity(name: string): number {
  const index = (SEVERITY_NAMES as readonly string[]).indexOf(name.toUpperCase());
  if (index < 0)
    throw new FlagError(
      "--severities",
      `unknown severity ${JSON.stringify(name)}, expected ${SEVERITY_NAMES}`,
    );
  return index + SEVERITY_MIN;
}

function runId(value: string): string {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(value))
    throw new FlagError("--run-id", "expected 1-64 characters of A-Z a-z 0-9 . _ -");
  return value;
}

/** "a:3,b,c:0.5" -> a (weight 3), b (1), c (0.5). */
export function weightedList<T>(list: string, flag: string, parse: (value: string) => T): Weighted<T>[] {
  const items = list.split(",");
  if (items.length > listEntriesMax) throw new FlagError(flag, `more than ${listEntriesMax} entries`);
  const seen = new Set<string>();
  return items.map((item) => {
    const colon = item.lastIndexOf(":");
    const value = colon >= 0 ? item.slice(0, colon) : item;
    const weightText = colon >= 0 ? item.slice(colon + 1) : "1";
    const weight = Number(weightText);
    if (value === "") throw new FlagError(flag, `empty value in ${JSON.stringify(item)}`);
    if (weightText === "" || !(weight > 0) || !Number.isFinite(weight))
      throw new FlagError(flag, `weight of ${JSON.stringify(value)} must be a positive number`);
    if (seen.has(value)) throw new FlagError(flag, `${JSON.stringify(value)} listed twice`);
    seen.add(value);
    return { value: parse(value), weight };
  });
}

/** "env=load,team=infra" -> { env: "load", team: "infra" }; a value may contain '='. */
function contextList(list: string): Record<string, string> {
  const context = new Map<string, string>();
  for (const item of list.split(",")) {
    const equals = item.indexOf("=");
    if (equals <= 0) throw new FlagError("--context", `expected key=value, got ${JSON.stringify(item)}`);
    const key = item.slice(0, equals);
    if (context.has(key)) throw new FlagError("--context", `${JSON.stringify(key)} given twice`);
    context.set(key, text(item.slice(equals + 1), "--context"));
  }
  // fromEntries defines own properties, so even a key like __proto__ stays a plain label.
  return Object.fromEntries(context);
}
