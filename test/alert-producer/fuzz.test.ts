/**
 * Random bodies against both ingest APIs: whatever the input, the answer is a 2xx or a 4xx with a
 * JSON error, never a 5xx. The generator is seeded, so a failure can be replayed.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createRandom } from "../../src/stages/alert-producer/random.ts";
import { newTopic, postJson, type Server, startServer, stopServer } from "./helpers.ts";

let server: Server;

beforeAll(async () => {
  server = await startServer(await newTopic(1));
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
      const answer = (await response.json()) as { error: { code: string } };
      expect(typeof answer.error.code).toBe("string");
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
