import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { fromBinary } from "@bufbuild/protobuf";
import { useTestSchema } from "../../harness/postgres.ts";
import { type RuleChanged, RuleChangedSchema } from "../../src/gen/alerting/v1/rule_pb.ts";
import { DeadlineError } from "../../src/runtime/deadline.ts";
import { createRuleServiceApp } from "../../src/stages/rule-service/app.ts";
import {
  type OutboxRelay,
  type PublishRecord,
  startOutboxRelay,
} from "../../src/stages/rule-service/outbox-relay.ts";
import { insertRule } from "../../src/stages/rule-service/rules-store.ts";

// The relay drains the whole outbox: the file's own schema holds only the rows its tests write.
const { sql } = useTestSchema("rule_relay");
const adminToken = `admin-${crypto.randomUUID()}`;
let server: ReturnType<typeof Bun.serve>;

beforeAll(async () => {
  server = Bun.serve({ port: 0, ...createRuleServiceApp({ sql, adminToken }) });
});

afterAll(async () => {
  await server.stop(true);
});

/** An in-process broker: records what it acknowledged, and can be taken down. */
class RecordingBroker {
  readonly acknowledged: { key: string; event: RuleChanged }[] = [];
  attempts = 0;
  down = false;
  /** The next publish neither succeeds nor fails, like a broker that went silent. */
  hangOnce = false;

  readonly publish = async (records: PublishRecord[]): Promise<void> => {
    this.attempts++;
    if (this.hangOnce) {
      this.hangOnce = false;
      return new Promise(() => {});
    }
    await Bun.sleep(1);
    if (this.down) throw new Error("broker down");
    for (const { key, value } of records)
      this.acknowledged.push({ key, event: fromBinary(RuleChangedSchema, value) });
  };
}

async function api(method: string, path: string, body?: unknown) {
  const response = await fetch(new URL(path, server.url), {
    method,
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function waitFor(condition: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await Bun.sleep(10);
  }
}

const unsentCount = async () =>
  Number((await sql<{ n: string }[]>`SELECT count(*) AS n FROM rule_outbox WHERE sent_at IS NULL`)[0]?.n);

/** Creates a client and `ruleCount` rules, updates each rule `updates` times, deletes every third. */
async function churn(ruleCount: number, updates: number): Promise<string> {
  const client = await api("POST", "/api/v1/clients", { name: `relay-${crypto.randomUUID()}` });
  await Promise.all(
    Array.from({ length: ruleCount }, async (_, i) => {
      const rule = await api("POST", "/api/v1/rules", {
        client_id: client.body.id,
        severity: "HIGH",
        source: `s${i}`,
        name: "n",
      });
      for (let version = 1; version <= updates; version++) {
        await api("PATCH", `/api/v1/rules/${rule.body.id}`, { enabled: version % 2 === 0, version });
      }
      if (i % 3 === 0) await api("DELETE", `/api/v1/rules/${rule.body.id}`);
    }),
  );
  return client.body.id;
}

const maxOutboxId = async () =>
  (await sql<{ id: string }[]>`SELECT coalesce(max(id), 0)::text AS id FROM rule_outbox`)[0]?.id ?? "0";

/** Every outbox row after `afterId` was acknowledged, carrying its fields. */
async function expectAllPublished(broker: RecordingBroker, afterId: string): Promise<void> {
  const rows = await sql<{ id: string; rule_id: string; version: number; sent_at: Date | null }[]>`
    SELECT id, rule_id, version, sent_at FROM rule_outbox WHERE id > ${afterId} ORDER BY id`;
  expect(rows.length).toBeGreaterThan(0);
  expect(rows.every((r) => r.sent_at !== null)).toBe(true);
  const byChange = new Map(broker.acknowledged.map((a) => [String(a.event.changeId), a]));
  for (const row of rows) {
    const published = byChange.get(row.id);
    expect(published?.key).toBe(row.rule_id);
    expect(published?.event).toMatchObject({
      ruleId: row.rule_id,
      version: BigInt(row.version),
      schemaVersion: 1,
    });
  }
}

/** Per rule, the first acknowledgement of each change comes in change order. */
function expectPerRuleOrder(broker: RecordingBroker): void {
  const seen = new Set<bigint>();
  const lastOfRule = new Map<string, bigint>();
  for (const { key, event } of broker.acknowledged) {
    if (seen.has(event.changeId)) continue;
    seen.add(event.changeId);
    expect(event.changeId).toBeGreaterThan(lastOfRule.get(key) ?? 0n);
    lastOfRule.set(key, event.changeId);
  }
}

describe("outbox relay", () => {
  let relays: OutboxRelay[] = [];
  const start = async (broker: RecordingBroker, options: { pollIntervalMs?: number } = {}) => {
    const relay = await startOutboxRelay({
      sql,
      publish: broker.publish,
      batchSize: 50,
      backoffInitialMs: 20,
      backoffMaxMs: 200,
      publishTimeoutMs: 500,
      onError: () => {},
      ...options,
    });
    relays.push(relay);
    return relay;
  };
  const stopAll = async () => {
    await Promise.all(relays.map((r) => r.stop()));
    relays = [];
  };

  test("publishes every change once, in order per rule, with the RuleChanged fields", async () => {
    const broker = new RecordingBroker();
    const watermark = await maxOutboxId();
    await start(broker);
    const clientId = await churn(30, 4);
    await waitFor(async () => (await unsentCount()) === 0);
    await stopAll();
    await expectAllPublished(broker, watermark);
    expectPerRuleOrder(broker);
    const changeIds = broker.acknowledged.map((a) => a.event.changeId);
    expect(new Set(changeIds).size).toBe(changeIds.length);
    const first = broker.acknowledged.find((a) => a.event.clientId === clientId)?.event;
    expect(first?.changedAtUnixMs).toBeGreaterThan(0n);
  });

  test("wakes on NOTIFY without waiting for the poll", async () => {
    const broker = new RecordingBroker();
    await start(broker, { pollIntervalMs: 60_000 });
    await Bun.sleep(50); // let the first, empty pass go to sleep
    const startedMs = Date.now();
    const client = await api("POST", "/api/v1/clients", { name: `relay-${crypto.randomUUID()}` });
    const rule = await api("POST", "/api/v1/rules", {
      client_id: client.body.id,
      severity: "LOW",
      source: "a",
      name: "b",
    });
    await waitFor(() => broker.acknowledged.some((a) => a.key === rule.body.id), 2000);
    expect(Date.now() - startedMs).toBeLessThan(2000);
    await stopAll();
  });

  test("nothing is published for a rolled-back transaction or a rejected change", async () => {
    const broker = new RecordingBroker();
    await start(broker);
    const client = await api("POST", "/api/v1/clients", { name: `relay-${crypto.randomUUID()}` });
    let rolledBackRuleId = "";
    await sql
      .begin(async (tx) => {
        const rule = await insertRule(tx, client.body.id, {
          severity: "LOW",
          source: "x",
          name: "y",
          enabled: true,
        });
        rolledBackRuleId = rule.id;
        throw new Error("abort");
      })
      .catch(() => {});
    const rule = await api("POST", "/api/v1/rules", {
      client_id: client.body.id,
      severity: "LOW",
      source: "a",
      name: "b",
    });
    expect((await api("PATCH", `/api/v1/rules/${rule.body.id}`, { enabled: false, version: 7 })).status).toBe(
      409,
    );
    expect(
      (
        await api("PATCH", `/api/v1/rules/${rule.body.id}`, {
          name: "*",
          source: "*",
          severity: "*",
          version: 1,
        })
      ).status,
    ).toBe(400);
    await waitFor(async () => (await unsentCount()) === 0);
    await stopAll();
    expect(rolledBackRuleId).not.toBe("");
    expect(broker.acknowledged.some((a) => a.key === rolledBackRuleId)).toBe(false);
    expect(broker.acknowledged.filter((a) => a.key === rule.body.id).map((a) => a.event.version)).toEqual([
      1n,
    ]);
  });

  test("while the broker is down nothing is marked sent; afterwards it catches up in order", async () => {
    const broker = new RecordingBroker();
    broker.down = true;
    const watermark = await maxOutboxId();
    await start(broker);
    await churn(20, 3);
    const pending = await unsentCount();
    expect(pending).toBeGreaterThan(0);
    await waitFor(() => broker.attempts >= 4);
    expect(await unsentCount()).toBe(pending);
    expect(broker.acknowledged).toEqual([]);

    broker.down = false;
    await waitFor(async () => (await unsentCount()) === 0);
    await stopAll();
    await expectAllPublished(broker, watermark);
    expectPerRuleOrder(broker);
  });

  test("a publish that never answers times out and is retried", async () => {
    const broker = new RecordingBroker();
    broker.hangOnce = true;
    const watermark = await maxOutboxId();
    await start(broker);
    await churn(3, 1);
    await waitFor(async () => (await unsentCount()) === 0);
    await stopAll();
    expect(broker.attempts).toBeGreaterThanOrEqual(2);
    await expectAllPublished(broker, watermark);
  });

  test("two relays never publish the same rows concurrently", async () => {
    const broker = new RecordingBroker();
    const watermark = await maxOutboxId();
    await start(broker);
    await start(broker);
    await churn(40, 3);
    await waitFor(async () => (await unsentCount()) === 0);
    await stopAll();
    const changeIds = broker.acknowledged.map((a) => a.event.changeId);
    expect(new Set(changeIds).size).toBe(changeIds.length);
    expectPerRuleOrder(broker);
    await expectAllPublished(broker, watermark);
  });
  test("a batch whose database call never answers fails the relay instead of stalling it", async () => {
    const broker = new RecordingBroker();
    const blocker = await sql.reserve();
    try {
      // Holds the outbox table so the relay's read waits for good, like a query whose answer was lost.
      await blocker.unsafe("BEGIN");
      await blocker.unsafe("LOCK TABLE rule_outbox IN ACCESS EXCLUSIVE MODE");
      const relay = await startOutboxRelay({
        sql,
        publish: broker.publish,
        batchTimeoutMs: 300,
        onError: () => {},
      });
      const startedAt = performance.now();
      const failure = await relay.failed.catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(DeadlineError);
      expect(performance.now() - startedAt).toBeLessThan(3000);
      expect(broker.attempts).toBe(0);
      const stopStartedAt = performance.now();
      await relay.stop(500);
      expect(performance.now() - stopStartedAt).toBeLessThan(1500);
    } finally {
      await blocker.unsafe("ROLLBACK");
      blocker.release();
    }
  });
});
