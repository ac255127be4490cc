/**
 * Grant and shared-scope changes reach the rules snapshot like rule changes: the real rule-updater
 * process, with its own Redis keys and its own (idle) rule.changed topic, rebuilds within about a second
 * of each committed change through the API, and not after a refused one. What the snapshot holds for
 * grants is the snapshot's own business; here only the rebuild is observed (the version moves on).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { brokers, quiet } from "../../harness/kafka.ts";
import { uniqueName } from "../../harness/names.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { eventually, type StageProcess, startStage, stopStage } from "../../harness/stages.ts";
import { connectRedis } from "../../src/adapters/redis.ts";
import { readSnapshotBytes, readSnapshotVersion, snapshotKeys } from "../../src/adapters/snapshot-store.ts";
import { decodeSnapshot } from "../../src/core/snapshot.ts";
import { Admin } from "../../src/kafka/index.ts";
import { createClient, type Service, startService } from "./helpers.ts";

const run = uniqueName("test-scope-snapshot");
const keys = snapshotKeys(`${run}:rules:`);
const redis = connectRedis();
const db = useTestSchema("rule_service_scope_snapshot");
const service: Service = startService(db);
let updater: StageProcess;

beforeAll(async () => {
  const admin = new Admin(brokers, {}, quiet);
  try {
    await admin.createTopics([{ name: `${run}.rule.changed`, partitions: 1 }]);
  } finally {
    admin.close();
  }
  updater = await startStage("rule-updater", {
    POSTGRES_URL: db.url,
    INPUT_TOPIC: `${run}.rule.changed`,
    GROUP_ID: `${run}-updater`,
    RULES_KEY_PREFIX: `${run}:rules:`,
  });
  expect(await eventually(async () => (await readSnapshotVersion(redis, keys)) !== undefined, 10_000)).toBe(
    true,
  );
}, 30_000);

afterAll(async () => {
  if (updater) expect(await stopStage(updater)).toBe(0);
  await redis.del(keys.snapshot, keys.version);
  redis.disconnect();
  await service.stop();
});

const version = async (): Promise<bigint> => (await readSnapshotVersion(redis, keys)) ?? -1n;

/**
 * Runs `change` and answers how long until the snapshot version moved past the one before it, or
 * undefined if it did not within 3 s: without a notification the updater would rebuild only at its
 * 30 s reconciliation, so the window tells the two apart without making this a timed test.
 */
async function rebuildAfter(change: () => Promise<void>): Promise<number | undefined> {
  const before = await version();
  const startedAt = performance.now();
  await change();
  const moved = await eventually(async () => (await version()) > before, 3000, 10);
  return moved ? performance.now() - startedAt : undefined;
}

async function expectStatus(method: string, path: string, status: number, body?: unknown): Promise<void> {
  const reply = await service.call(method, path, { body });
  expect({ method, path, status: reply.status }).toEqual({ method, path, status });
}

test("each committed grant or scope change rebuilds the snapshot", async () => {
  const client = await createClient(service);
  const other = await createClient(service);
  const scope = (await service.call("POST", "/api/v1/scopes", { body: { name: run } })).body;
  const grants = `/api/v1/scopes/${scope.id}/grants`;

  const changes: [string, () => Promise<void>][] = [
    ["grant", () => expectStatus("POST", grants, 201, { client_id: client.id })],
    ["second grant", () => expectStatus("POST", grants, 201, { client_id: other.id })],
    ["grant taken back", () => expectStatus("DELETE", `${grants}?client_id=${client.id}`, 204)],
    ["client with a grant deleted", () => expectStatus("DELETE", `/api/v1/clients/${other.id}`, 204)],
    ["granted again", () => expectStatus("POST", grants, 201, { client_id: client.id })],
    ["scope with a grant deleted", () => expectStatus("DELETE", `/api/v1/scopes/${scope.id}`, 204)],
  ];
  for (const [what, change] of changes) {
    const afterMs = await rebuildAfter(change);
    expect({ what, rebuilt: afterMs !== undefined }).toEqual({ what, rebuilt: true });
    console.log(`${what}: snapshot rebuilt after ${Math.round(afterMs as number)} ms`);
  }
});

test("a refused change rebuilds nothing: its transaction, and its notification, roll back", async () => {
  const client = await createClient(service);
  const scope = (await service.call("POST", "/api/v1/scopes", { body: { name: `${run}-refused` } })).body;
  const grants = `/api/v1/scopes/${scope.id}/grants`;
  await expectStatus("POST", grants, 201, { client_id: client.id });
  // Let the rebuild of that grant land before watching for none.
  await Bun.sleep(500);
  const before = await version();
  await expectStatus("POST", grants, 409, { client_id: client.id });
  await expectStatus("POST", grants, 404, { client_id: crypto.randomUUID() });
  await Bun.sleep(1000);
  expect(await version()).toBe(before);
});

test("a rule's delivery settings reach the snapshot, and leave it when set back to the defaults", async () => {
  const client = await createClient(service);
  const created = await service.call("POST", "/api/v1/rules", {
    token: client.key,
    body: {
      severity: "HIGH",
      source: uniqueName("svc"),
      name: "*",
      group_by: ["source"],
      mute_windows: ["* 01:00-02:00"],
    },
  });
  expect(created.status).toBe(201);
  const policyOf = async (ruleId: string) => {
    const bytes = await readSnapshotBytes(redis, keys);
    return bytes && decodeSnapshot(bytes).policies.find((entry) => entry.ruleId === ruleId)?.policy;
  };
  expect(
    await eventually(async () => (await policyOf(created.body.id))?.groupBy.join() === "source", 5_000),
  ).toBe(true);
  expect((await policyOf(created.body.id))?.muteWindows).toEqual(["* 01:00-02:00"]);
  const reset = await service.call("PATCH", `/api/v1/rules/${created.body.id}`, {
    token: client.key,
    body: { group_by: [], mute_windows: [], version: 1 },
  });
  expect(reset.status).toBe(200);
  expect(await eventually(async () => (await policyOf(created.body.id)) === undefined, 5_000)).toBe(true);
});
