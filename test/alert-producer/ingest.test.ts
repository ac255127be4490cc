/** `main.ts serve` as a real process: both ingest APIs, read back from its own topic. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { useTestSchema } from "../../harness/postgres.ts";
import { rawRequest } from "../../harness/raw-http.ts";
import { deriveAlertId } from "../../src/core/alert-id.ts";
import { newTopic, postJson, type Server, startServer, stopServer, TopicReader } from "./helpers.ts";

const db = useTestSchema("producer_ingest");
let server: Server;
let reader: TopicReader;

beforeAll(async () => {
  const topic = await newTopic();
  server = await startServer(db, topic);
  reader = new TopicReader(topic);
});

afterAll(async () => {
  await reader.close();
  if (server.process.exitCode === null) await stopServer(server);
});

/** The first record written under each id. */
async function firstCopies(ids: readonly string[]) {
  return (await reader.waitFor(ids)).map((copies) => copies[0]);
}

interface Accepted {
  accepted: number;
  alert_ids: string[];
  /** v2 only: the alerts refused, each alone. */
  rejected?: { index: number; fields: Record<string, string> }[];
}
interface Rejected {
  error: { code: string; message: string; fields?: Record<string, string> };
}

describe("POST /api/v1/alerts", () => {
  test("one alert: 200 after Kafka acknowledged it, with the id the evaluator will derive", async () => {
    const response = await postJson(`${server.url}/api/v1/alerts`, {
      severity: "CRITICAL",
      source: "db-1",
      name: "disk-full",
      context: { mount: "/var" },
      event_time: "2024-05-01T12:00:00Z",
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as Accepted;
    const eventTimeMs = Date.UTC(2024, 4, 1, 12);
    expect(body).toEqual({
      accepted: 1,
      alert_ids: [deriveAlertId(4, "db-1", "disk-full", BigInt(eventTimeMs))],
    });
    const [written] = await firstCopies(body.alert_ids);
    expect(written?.alert).toMatchObject({
      alertId: "",
      severity: 4,
      source: "db-1",
      name: "disk-full",
      context: { mount: "/var" },
      eventTimeUnixMs: BigInt(eventTimeMs),
      schemaVersion: 1,
    });
  });

  test("a batch: one record per alert, ids in request order", async () => {
    const before = Date.now();
    const ids = [`b-${before}-1`, `b-${before}-2`, `b-${before}-3`];
    const response = await postJson(
      `${server.url}/api/v1/alerts`,
      ids.map((alert_id, i) => ({
        alert_id,
        severity: "LOW",
        source: "api",
        name: `n${i}`,
        event_time: before,
      })),
    );
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ accepted: 3, alert_ids: ids });
    const written = await reader.waitFor(ids);
    expect(written.map((copies) => copies.length)).toEqual([1, 1, 1]);
    expect(written.map((copies) => copies[0]?.alert.name)).toEqual(["n0", "n1", "n2"]);
    expect(written.every((copies) => copies[0]?.alert.eventTimeUnixMs === BigInt(before))).toBe(true);
  });

  test("without event_time the alert is stamped when received", async () => {
    const before = Date.now();
    const response = await postJson(`${server.url}/api/v1/alerts`, {
      alert_id: `now-${before}`,
      severity: "MEDIUM",
      source: "s",
      name: "n",
    });
    expect(response.status).toBe(200);
    const [written] = await firstCopies([`now-${before}`]);
    expect(Number(written?.alert.eventTimeUnixMs)).toBeGreaterThanOrEqual(before);
    expect(Number(written?.alert.eventTimeUnixMs)).toBeLessThanOrEqual(Date.now());
  });

  test("400 names every bad field, and nothing of the request is written", async () => {
    const marker = `bad-${Date.now()}`;
    const response = await postJson(`${server.url}/api/v1/alerts`, [
      { alert_id: marker, severity: "LOW", source: "a", name: "b" },
      { severity: "LOW", source: "a", name: "b", context: { n: 1 } },
      { severity: "LOW", source: 5, name: "b" },
      { severity: "SEVERE", source: "a" },
    ]);
    expect(response.status).toBe(400);
    expect((await response.json()) as Rejected).toEqual({
      error: {
        code: "invalid_alerts",
        message: "4 invalid field(s)",
        fields: {
          "[1].context.n": "expected a string, got number",
          "[2].source": "expected a string, got number",
          "[3].severity": 'unknown severity "SEVERE", expected one of LOW|MEDIUM|HIGH|CRITICAL',
          "[3].name": "required",
        },
      },
    });
    expect(await reader.waitFor([marker], 1500)).toEqual([[]]);
  });
});

describe("text Postgres cannot store (NUL, unpaired surrogates)", () => {
  // Raw bodies: JSON.parse turns these escapes into the very characters that used to stop the
  // aggregator for every tenant once such an alert was accepted.
  test("v1: every string field is checked; the request is refused whole and nothing is written", async () => {
    const marker = `nul-${Date.now()}`;
    const response = await postJson(
      `${server.url}/api/v1/alerts`,
      `[
        {"alert_id": "${marker}", "severity": "LOW", "source": "a", "name": "b"},
        {"severity": "LOW", "source": "db\\u0000", "name": "b"},
        {"severity": "LOW", "source": "a", "name": "\\ud800x"},
        {"alert_id": "x\\udc00", "severity": "LOW", "source": "a", "name": "b"},
        {"severity": "LOW", "source": "a", "name": "b", "context": {"db_password": "hunt\\u0000er2"}},
        {"severity": "LOW", "source": "a", "name": "b", "context": {"\\u0000": "v"}}
      ]`,
    );
    expect(response.status).toBe(400);
    expect((await response.json()) as Rejected).toEqual({
      error: {
        code: "invalid_alerts",
        message: "5 invalid field(s)",
        fields: {
          "[1].source": "contains a NUL character at position 2",
          "[2].name": "contains an unpaired surrogate at position 0",
          "[3].alert_id": "contains an unpaired surrogate at position 1",
          "[4].context.db_password": "contains a NUL character at position 4",
          "[5].context.\u0000": "key contains a NUL character at position 0",
        },
      },
    });
    expect(await reader.waitFor([marker], 1500)).toEqual([[]]);
  });

  test("v2: labels, label names, annotations and generatorURL are checked", async () => {
    const labels = '"alertname": "A", "severity": "low", "instance": "i"';
    const response = await postJson(
      `${server.url}/api/v2/alerts`,
      `[
        {"labels": {${labels}}},
        {"labels": {${labels}, "db_password": "hunt\\u0000er2"}},
        {"labels": {${labels}, "te\\ud83dam": "x"}},
        {"labels": {${labels}}, "annotations": {"summary": "\\udfff"}},
        {"labels": {${labels}}, "generatorURL": "http://prometheus/\\u0000"}
      ]`,
    );
    // Each poisoned alert is refused alone; the clean one is written.
    expect(response.status).toBe(200);
    const body = (await response.json()) as Accepted;
    expect(body.accepted).toBe(1);
    expect(body.rejected).toEqual([
      { index: 1, fields: { "labels.db_password": "contains a NUL character at position 4" } },
      { index: 2, fields: { "labels.te\ud83dam": "name contains an unpaired surrogate at position 2" } },
      { index: 3, fields: { "annotations.summary": "contains an unpaired surrogate at position 0" } },
      { index: 4, fields: { generatorURL: "contains a NUL character at position 18" } },
    ]);
  });

  test("a surrogate pair (an emoji) is ordinary text and is written as sent", async () => {
    const id = `emoji-${Date.now()}`;
    const response = await postJson(
      `${server.url}/api/v1/alerts`,
      `{"alert_id": "${id}", "severity": "LOW", "source": "\\ud83d\\udd25", "name": "n"}`,
    );
    expect(response.status).toBe(200);
    const [written] = await firstCopies([id]);
    expect(written?.alert.source).toBe("🔥");
  });
});

describe("POST /api/v2/alerts (Alertmanager)", () => {
  test("a Prometheus payload maps to records as documented", async () => {
    const startsAt = new Date(Date.now() - 60_000).toISOString();
    const payload = [
      {
        labels: {
          alertname: "HighCPU",
          severity: "warning",
          instance: "10.0.0.1:9100",
          job: "node",
          team: "infra",
        },
        annotations: { summary: "CPU above 90% on 10.0.0.1:9100", description: "for 5 minutes" },
        startsAt,
        endsAt: "0001-01-01T00:00:00Z",
        generatorURL: "http://prometheus:9090/graph?g0.expr=cpu%3E0.9",
      },
      {
        labels: { alertname: "TargetDown", severity: "CRITICAL", job: "blackbox" },
        annotations: {},
        startsAt,
        endsAt: new Date(Date.now() + 240_000).toISOString(),
        generatorURL: "http://prometheus:9090/graph?g0.expr=up%3D%3D0",
      },
    ];
    const response = await postJson(`${server.url}/api/v2/alerts`, payload);
    expect(response.status).toBe(200);
    const body = (await response.json()) as Accepted;
    expect(body.accepted).toBe(2);
    const startsAtMs = Date.parse(startsAt);
    for (const id of body.alert_ids) expect(id).toMatch(/^am-[0-9a-f]{16}$/);

    const [cpu, down] = await firstCopies(body.alert_ids);
    expect(cpu?.alert).toMatchObject({
      alertId: body.alert_ids[0],
      severity: 2,
      source: "10.0.0.1:9100",
      name: "HighCPU",
      eventTimeUnixMs: BigInt(startsAtMs),
      context: {
        job: "node",
        team: "infra",
        "annotation.summary": "CPU above 90% on 10.0.0.1:9100",
        "annotation.description": "for 5 minutes",
        generatorURL: "http://prometheus:9090/graph?g0.expr=cpu%3E0.9",
      },
    });
    expect(down?.alert).toMatchObject({ severity: 4, source: "blackbox", name: "TargetDown" });
    expect(down?.alert.context.endsAt).toBe(payload[1]?.endsAt as string);
  });

  test("a re-sent alert keeps its id", async () => {
    const alert = {
      labels: { alertname: "A", severity: "info", instance: "x" },
      startsAt: "2024-05-01T00:00:00Z",
    };
    const first = (await (await postJson(`${server.url}/api/v2/alerts`, [alert])).json()) as Accepted;
    const again = (await (await postJson(`${server.url}/api/v2/alerts`, [alert])).json()) as Accepted;
    expect(again.alert_ids).toEqual(first.alert_ids);
  });

  test("each alert stands alone: odd ones are mapped, bad ones listed, the rest written", async () => {
    const run = `lenient-${Date.now()}`;
    const payload = [
      { labels: { alertname: `${run}-no-severity`, instance: "x" } },
      { labels: { alertname: `${run}-page`, severity: "page", instance: "x" } },
      { labels: { alertname: `${run}-odd`, severity: "none", job: "j" } },
      { labels: { alertname: `${run}-sum` } },
      { labels: { severity: "low", instance: "x" } },
      { labels: { alertname: `${run}-late`, instance: "x" }, startsAt: "soon" },
    ];
    const response = await postJson(`${server.url}/api/v2/alerts`, payload);
    expect(response.status).toBe(200);
    const body = (await response.json()) as Accepted;
    expect(body.accepted).toBe(4);
    expect(body.rejected).toEqual([
      { index: 4, fields: { "labels.alertname": "required" } },
      {
        index: 5,
        fields: { startsAt: "expected an RFC 3339 timestamp with a zone, e.g. 2024-05-01T12:00:00Z" },
      },
    ]);
    const written = await firstCopies(body.alert_ids);
    expect(written.map((copy) => [copy?.alert.name, copy?.alert.severity, copy?.alert.source])).toEqual([
      [`${run}-no-severity`, 2, "x"],
      [`${run}-page`, 4, "x"],
      [`${run}-odd`, 2, "j"],
      [`${run}-sum`, 2, "unknown"],
    ]);
    expect(written[2]?.alert.context).toEqual({ severity: "none" });
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/ingest_alerts_rejected_total\{api="v2",stage="alert-producer"\} [2-9]/);
  });

  test("when no alert is valid: 400 with a JSON string naming each field, as amtool reads it", async () => {
    const response = await postJson(`${server.url}/api/v2/alerts`, [
      { labels: { instance: "x" } },
      { labels: { alertname: "A" }, endsAt: 5 },
    ]);
    expect(response.status).toBe(400);
    expect(await response.json()).toBe(
      "alerts[0].labels.alertname: required; alerts[1].endsAt: expected an RFC 3339 timestamp with a zone, e.g. 2024-05-01T12:00:00Z",
    );
    const notArray = await postJson(`${server.url}/api/v2/alerts`, { labels: {} });
    expect(await notArray.json()).toBe("body: expected an array of alerts, got object");
  });
});

describe("refused requests", () => {
  test("415 for a body that is not application/json", async () => {
    const response = await fetch(`${server.url}/api/v1/alerts`, {
      method: "POST",
      headers: { "content-type": "text/plain", authorization: server.credential.authorization },
      body: "{}",
    });
    expect(response.status).toBe(415);
    expect(((await response.json()) as Rejected).error.code).toBe("unsupported_media_type");
  });

  test("413 for a body over 1 MiB, declared or streamed", async () => {
    const big = JSON.stringify({
      severity: "LOW",
      source: "a",
      name: "b",
      context: { x: "y".repeat(1024 * 1024) },
    });
    const declared = await postJson(`${server.url}/api/v1/alerts`, big);
    expect(declared.status).toBe(413);
    expect(((await declared.json()) as Rejected).error.code).toBe("payload_too_large");
    const streamed = await fetch(`${server.url}/api/v1/alerts`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: server.credential.authorization },
      body: new Blob([big]).stream(),
    });
    expect(streamed.status).toBe(413);
  });

  test("a body far over the limit gets the same JSON 413, not Bun's bare one", async () => {
    const huge = JSON.stringify([
      { severity: "LOW", source: "a", name: "b", context: { x: "y".repeat(5e6) } },
    ]);
    const declared = await postJson(`${server.url}/api/v2/alerts`, huge);
    expect(declared.status).toBe(413);
    expect(await declared.json()).toBe("the body must be at most 1048576 bytes");
    const streamed = await fetch(`${server.url}/api/v1/alerts`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: server.credential.authorization },
      body: new Blob([huge]).stream(),
    });
    expect(streamed.status).toBe(413);
    expect(((await streamed.json()) as Rejected).error.code).toBe("payload_too_large");
    // A gigabyte announced, a few bytes sent: refused on the header, without waiting for the body.
    const announced = await rawRequest(server.url, {
      method: "POST",
      path: "/api/v1/alerts",
      headers: {
        "content-type": "application/json",
        "content-length": String(2 ** 30),
        authorization: server.credential.authorization,
      },
      body: '[{"severity": "LOW"',
    });
    expect(announced.status).toBe(413);
    expect(announced.headers.get("content-type")).toStartWith("application/json");
    expect(JSON.parse(announced.body)).toEqual({
      error: { code: "payload_too_large", message: "the body must be at most 1048576 bytes" },
    });
  });

  test("413 for more than 10,000 alerts in one request", async () => {
    const alert = { severity: "LOW", source: "a", name: "b" };
    const response = await postJson(
      `${server.url}/api/v1/alerts`,
      Array.from({ length: 10_001 }, () => alert),
    );
    expect(response.status).toBe(413);
    expect(((await response.json()) as Rejected).error.code).toBe("too_many_alerts");
  });

  test("400 for invalid JSON, 405 for other methods", async () => {
    const broken = await postJson(`${server.url}/api/v2/alerts`, '[{"labels": ');
    expect(broken.status).toBe(400);
    expect(await broken.json()).toBeString();
    const brokenV1 = await postJson(`${server.url}/api/v1/alerts`, '[{"severity": ');
    expect(((await brokenV1.json()) as Rejected).error.code).toBe("invalid_json");
    const get = await fetch(`${server.url}/api/v1/alerts`);
    expect(get.status).toBe(405);
    expect(get.headers.get("allow")).toBe("POST");
  });
});

describe("service", () => {
  test("health, readiness and metrics", async () => {
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toContain('ingest_requests_total{api="v1",status="200",stage="alert-producer"}');
    expect(metrics).toMatch(
      /records_produced_total\{topic="test-alert-producer-[^"]+",stage="alert-producer"\} \d+/,
    );
  });

  test("503 when Kafka does not acknowledge", async () => {
    const unreachable = await startServer(db, "nowhere", {
      KAFKA_BROKERS: "127.0.0.1:1",
      INGEST_SEND_TIMEOUT_MS: "300",
    });
    try {
      const response = await postJson(`${unreachable.url}/api/v1/alerts`, {
        severity: "LOW",
        source: "a",
        name: "b",
      });
      expect(response.status).toBe(503);
      expect(((await response.json()) as Rejected).error.code).toBe("kafka_unavailable");
    } finally {
      await stopServer(unreachable);
    }
  });

  test("SIGTERM finishes a request in progress, then exits 0", async () => {
    // 10,000 alerts take the server tens of milliseconds to parse, encode and get acknowledged.
    const alerts = Array.from({ length: 10_000 }, (_, i) => ({
      severity: "LOW",
      source: "a",
      name: `last-${i}`,
    }));
    const inFlight = postJson(`${server.url}/api/v1/alerts`, alerts);
    await Bun.sleep(30);
    const code = await stopServer(server);
    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(((await response.json()) as Accepted).accepted).toBe(10_000);
    expect(code).toBe(0);
  });
});
