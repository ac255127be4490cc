/**
 * Random bodies against both ingest APIs: whatever the input, the answer is a 2xx or a 4xx with a
 * JSON error, never a 5xx; and text Postgres cannot store, mixed into a valid stream, is refused
 * alert by alert while every valid alert is written once. The generator is seeded, so a failure can
 * be replayed.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { useTestSchema } from "../../harness/postgres.ts";
import { createRandom } from "../../src/stages/alert-producer/random.ts";
import { newTopic, postJson, readAlerts, type Server, startServer, stopServer } from "./helpers.ts";

const db = useTestSchema("producer_fuzz");
let server: Server;

beforeAll(async () => {
  server = await startServer(db, await newTopic(1));
});

afterAll(async () => {
  await stopServer(server);
});

const random = createRandom(20_240_501);
const int = (below: number) => Math.floor(random() * below);
const pick = <T>(values: readonly T[]): T => values[int(values.length)] as T;

const strings = [
  "",
  "LOW",
  "critical",
  "warning",
  "HIGH ",
  "🔥 disk",
  "\u0000",
  "\ud800",
  "é".repeat(2000),
  "x".repeat(300_000),
  "__proto__",
  "constructor",
  "2024-05-01T12:00:00Z",
  "0001-01-01T00:00:00Z",
  "9999-12-31T23:59:59.999999999+14:00",
  "NaN",
];
const numbers = [0, -1, 1.5, 1e308, -0, 2 ** 63, Number.MAX_SAFE_INTEGER, 1_714_564_800_000];
const fieldNames = [
  "alert_id",
  "severity",
  "source",
  "name",
  "context",
  "event_time",
  "labels",
  "annotations",
  "startsAt",
  "endsAt",
  "generatorURL",
  "alertname",
  "instance",
  "job",
  "__proto__",
  "🙂",
];

function value(depth: number): unknown {
  switch (depth > 4 ? int(4) : int(7)) {
    case 0:
      return pick(strings);
    case 1:
      return pick(numbers);
    case 2:
      return pick([true, false, null]);
    case 3:
      return `${pick(strings).slice(0, 50)}${int(1000)}`;
    case 4:
      return Array.from({ length: int(4) }, () => value(depth + 1));
    default:
      return object(depth + 1);
  }
}

/** Sets a property even when its name is __proto__, which plain assignment would not. */
function set(target: Record<string, unknown>, key: string, fieldValue: unknown): void {
  Object.defineProperty(target, key, {
    value: fieldValue,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

function object(depth: number): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (let i = int(6); i > 0; i--) set(result, pick(fieldNames), value(depth));
  return result;
}

/** Mostly well-formed alerts of either API with one or two fields broken, plus pure noise. */
function body(): string {
  const v1 = () => ({ severity: pick(["LOW", "HIGH"]), source: "s", name: "n", context: { k: "v" } });
  const v2 = () => ({
    labels: { alertname: "A", severity: pick(["info", "critical"]), instance: "i" },
    annotations: { summary: "s" },
    startsAt: "2024-05-01T12:00:00Z",
  });
  const broken = (alert: Record<string, unknown>) => {
    for (let i = 1 + int(2); i > 0; i--) set(alert, pick(fieldNames), value(2));
    return alert;
  };
  // Half the arrays are all valid, so acceptance is exercised as well.
  const brokenShare = pick([0, 0.3]);
  switch (int(9)) {
    case 0:
      return JSON.stringify(value(0));
    case 1:
      return JSON.stringify(
        Array.from({ length: 1 + int(20) }, () => (random() < brokenShare ? broken(v1()) : v1())),
      );
    case 2:
      return JSON.stringify(
        Array.from({ length: 1 + int(20) }, () => (random() < brokenShare ? broken(v2()) : v2())),
      );
    case 3:
      // Deep nesting, up to what fits in the body limit.
      return `${"[".repeat(100_000 + int(400_000))}${"]".repeat(int(2) * 500_000)}`;
    case 4:
      return `{"labels": ${'{"a":'.repeat(50_000)}1${"}".repeat(50_000)}}`;
    case 5:
      return JSON.stringify([
        { ...v2(), labels: Object.fromEntries(Array.from({ length: int(600) }, (_, i) => [`l${i}`, "v"])) },
      ]);
    case 6:
      return JSON.stringify({ ...v1(), context: { huge: "z".repeat(pick([900_000, 1_100_000])) } });
    case 7:
      // Truncated or corrupted JSON, and invalid UTF-8.
      return pick([
        JSON.stringify(v1()).slice(0, int(40)),
        '{"severity": "LOW"',
        "\u00ff\u00fe",
        "[1,]",
        "{'a': 1}",
      ]);
    default:
      return JSON.stringify(broken(v1()));
  }
}

test("random bodies never get a 5xx", async () => {
  const statuses = new Map<number, number>();
  for (let i = 0; i < 400; i++) {
    const text = body();
    const path = random() < 0.5 ? "/api/v1/alerts" : "/api/v2/alerts";
    const response = await postJson(`${server.url}${path}`, text);
    statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
    if (response.status >= 500) throw new Error(`${response.status} for ${path} ${text.slice(0, 300)}`);
    if (response.status !== 200) {
      const answer = (await response.json()) as { error: { code: string } } | string;
      // v2 answers errors as Alertmanager does, as a JSON string.
      if (path === "/api/v2/alerts") expect(answer).toBeString();
      else expect(typeof (answer as { error: { code: string } }).error.code).toBe("string");
    } else {
      await response.body?.cancel();
    }
  }
  // The mix must have exercised both acceptance and each kind of refusal.
  expect(statuses.get(200)).toBeGreaterThan(10);
  expect(statuses.get(400)).toBeGreaterThan(10);
  expect(statuses.get(413)).toBeGreaterThan(0);
}, 60_000);

test("invalid UTF-8 bytes are a 400", async () => {
  const response = await fetch(`${server.url}/api/v1/alerts`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: server.credential.authorization },
    body: new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
  });
  expect(response.status).toBe(400);
});

/** Where a poisoned string goes: its field path in the 400, and what to write into the alert. */
interface Poisoning {
  path: string;
  /** How the reason starts: "key " for a context key, "name " for a label or annotation name. */
  reasonPrefix: "" | "key " | "name ";
  apply(alert: Record<string, unknown>, poisoned: string): void;
}

const v1Poisonings: Poisoning[] = [
  { path: "source", reasonPrefix: "", apply: (a, p) => set(a, "source", p) },
  { path: "name", reasonPrefix: "", apply: (a, p) => set(a, "name", p) },
  { path: "alert_id", reasonPrefix: "", apply: (a, p) => set(a, "alert_id", p) },
  {
    path: "context.db_password",
    reasonPrefix: "",
    apply: (a, p) => set(ctx(a, "context"), "db_password", p),
  },
  { path: "context.<key>", reasonPrefix: "key ", apply: (a, p) => set(ctx(a, "context"), p, "v") },
];
const v2Poisonings: Poisoning[] = [
  { path: "labels.alertname", reasonPrefix: "", apply: (a, p) => set(ctx(a, "labels"), "alertname", p) },
  { path: "labels.instance", reasonPrefix: "", apply: (a, p) => set(ctx(a, "labels"), "instance", p) },
  { path: "labels.db_password", reasonPrefix: "", apply: (a, p) => set(ctx(a, "labels"), "db_password", p) },
  { path: "labels.<key>", reasonPrefix: "name ", apply: (a, p) => set(ctx(a, "labels"), p, "v") },
  {
    path: "annotations.summary",
    reasonPrefix: "",
    apply: (a, p) => set(ctx(a, "annotations"), "summary", p),
  },
  { path: "annotations.<key>", reasonPrefix: "name ", apply: (a, p) => set(ctx(a, "annotations"), p, "v") },
  { path: "generatorURL", reasonPrefix: "", apply: (a, p) => set(a, "generatorURL", p) },
];

function ctx(alert: Record<string, unknown>, name: string): Record<string, unknown> {
  return alert[name] as Record<string, unknown>;
}

/** A unique text with one character Postgres cannot store at a random position. */
function poisoned(unique: string): { text: string; reason: string } {
  const [bad, reason] = pick([
    ["\u0000", "a NUL character"],
    ["\ud800", "an unpaired surrogate"],
    ["\udbff", "an unpaired surrogate"],
    ["\udc00", "an unpaired surrogate"],
    ["\udfff", "an unpaired surrogate"],
  ] as const);
  const at = int(unique.length + 1);
  return {
    text: unique.slice(0, at) + bad + unique.slice(at),
    reason: `contains ${reason} at position ${at}`,
  };
}

test("poisoned text in a valid stream: each such alert is a 400 naming its field, each valid one is written once", async () => {
  const topic = await newTopic(1);
  const own = await startServer(db, topic);
  try {
    const run = `poison-${Date.now().toString(36)}`;
    const writtenIds: string[] = [];
    let refused = 0;
    for (let i = 0; i < 300; i++) {
      const v1 = random() < 0.5;
      const unique = `${run}-${i}`;
      // JSON.stringify writes these characters as \u escapes, the form a hostile body would carry.
      const alert: Record<string, unknown> = v1
        ? { alert_id: unique, severity: "HIGH", source: "db", name: unique, context: { run } }
        : {
            labels: { alertname: unique, severity: "critical", instance: "db", run },
            annotations: { summary: "s" },
            startsAt: "2024-05-01T12:00:00Z",
          };
      const poisoning = random() < 0.4 ? pick(v1 ? v1Poisonings : v2Poisonings) : undefined;
      const poison = poisoned(unique);
      poisoning?.apply(alert, poison.text);
      const path = v1 ? "/api/v1/alerts" : "/api/v2/alerts";
      const response = await postJson(`${own.url}${path}`, JSON.stringify([alert]));
      const answer = (await response.json()) as
        | { alert_ids?: string[]; error?: { fields: Record<string, string> } }
        | string;
      if (poisoning === undefined) {
        expect({ i, status: response.status }).toEqual({ i, status: 200 });
        writtenIds.push(...((answer as { alert_ids?: string[] }).alert_ids ?? []));
        continue;
      }
      refused++;
      const fieldPath = `[0].${poisoning.path.replace("<key>", poison.text)}`;
      const reason = `${poisoning.reasonPrefix}${poison.reason}`;
      // v1 names the field in an error object; v2 in the JSON string amtool prints.
      const refusal = typeof answer === "string" ? answer : answer.error?.fields;
      expect({ i, status: response.status, refusal }).toEqual({
        i,
        status: 400,
        refusal: v1 ? { [fieldPath]: reason } : `alerts${fieldPath}: ${reason}`,
      });
    }
    expect(refused).toBeGreaterThan(60);
    expect(writtenIds.length).toBeGreaterThan(120);
    // Everything on the topic: exactly the valid alerts, once each, and nothing poisoned.
    const written = await readAlerts(topic, writtenIds.length, 20_000, 1000);
    expect(written.map((record) => record.key).sort()).toEqual([...writtenIds].sort());
    for (const { alert } of written) {
      for (const text of [alert.source, alert.name, alert.alertId, ...Object.entries(alert.context).flat()]) {
        expect(text.isWellFormed() && !text.includes("\u0000")).toBe(true);
      }
    }
  } finally {
    await stopServer(own);
  }
}, 60_000);
