/** `main.ts load` as a real process against the real broker, read back from its own topic. */
import { describe, expect, test } from "bun:test";
import { newTopic, readAlerts, runProducer } from "./helpers.ts";

async function finish(child: ReturnType<typeof runProducer>) {
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  const lines = stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { code, stderr, lines, summary: lines.find((line) => line.event === "summary") };
}

describe("alert-producer load", () => {
  test("--count 500 --rate 2000 writes exactly 500 valid alerts with the asked distribution", async () => {
    const topic = await newTopic();
    const startedMs = Date.now();
    const run = await finish(
      runProducer([
        "load",
        ...["--count", "500", "--rate", "2000", "--topic", topic, "--seed", "11", "--run-id", "lt"],
        ...[
          "--severities",
          "HIGH:3,LOW:1",
          "--sources",
          "api:4,db:1",
          "--names",
          "cpu",
          "--context",
          "env=test",
        ],
      ]),
    );
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.summary).toMatchObject({ sent: 500, acknowledged: 500, errors: 0, interrupted: false });
    // 500 at 2000/s is 250 ms on schedule; allow for a slow machine, but not for a run ignoring the rate.
    expect(run.summary?.durationMs as number).toBeGreaterThanOrEqual(240);
    expect(run.summary?.durationMs as number).toBeLessThan(5000);

    const written = await readAlerts(topic, 500);
    expect(written).toHaveLength(500);
    const ids = written.map((w) => w.alert.alertId);
    expect(new Set(ids)).toEqual(new Set(Array.from({ length: 500 }, (_, seq) => `lt-${seq}`)));
    for (const { key, alert } of written) {
      expect(key).toBe(alert.alertId);
      expect(alert.schemaVersion).toBe(1);
      expect([1, 3]).toContain(alert.severity);
      expect(["api", "db"]).toContain(alert.source);
      expect(alert.name).toBe("cpu");
      expect(alert.context).toEqual({ env: "test" });
      expect(Number(alert.eventTimeUnixMs)).toBeGreaterThanOrEqual(startedMs);
    }
    const high = written.filter((w) => w.alert.severity === 3).length;
    const api = written.filter((w) => w.alert.source === "api").length;
    expect(high).toBeGreaterThan(325); // expected 375
    expect(high).toBeLessThan(425);
    expect(api).toBeGreaterThan(350); // expected 400
    expect(api).toBeLessThan(450);
  });

  test("--hashed-ids sends empty ids, keyed by the id the evaluator derives", async () => {
    const topic = await newTopic(1);
    const run = await finish(
      runProducer(["load", "--count", "20", "--rate", "1000", "--hashed-ids", "--topic", topic]),
    );
    expect(run.code).toBe(0);
    const written = await readAlerts(topic, 20);
    expect(written).toHaveLength(20);
    for (const { key, alert } of written) {
      expect(alert.alertId).toBe("");
      expect(key).toMatch(/^[0-9a-f]{32}$/);
    }
  });

  test("without a TTY, progress is JSON lines and the run ends with a summary", async () => {
    const topic = await newTopic(1);
    const run = await finish(runProducer(["load", "--duration", "6", "--rate", "50", "--topic", topic]));
    expect(run.code).toBe(0);
    expect(run.lines.map((line) => line.event)).toEqual(["start", "progress", "summary"]);
    // Five seconds in: about 250 sent, the backlog at most the one alert just due.
    expect(run.lines[1]).toMatchObject({ event: "progress", errors: 0, ratePerS: 50 });
    expect(run.lines[1]?.sent as number).toBeGreaterThanOrEqual(245);
    expect(run.lines[1]?.backlog as number).toBeLessThanOrEqual(1);
    expect(run.summary).toMatchObject({ sent: 300, acknowledged: 300, targetRatePerS: 50 });
  }, 15_000);

  test("a bad flag exits 2 with a message naming it, before sending anything", async () => {
    const run = await finish(runProducer(["load", "--count", "10", "--severities", "HIGH:x"]));
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--severities: weight of "HIGH" must be a positive number');
    expect(run.lines).toEqual([]);
  });
});
