/**
 * The aggregator's dedupe insert must stay linear in the batch whatever the statistics say. With
 * statistics taken while the table was empty (a fresh install, autovacuum off, a bulk delete), the
 * planner once joined each batch to a sequential scan of the whole table in a nested loop: every
 * input row times every row of the table, 1.1 s for a 2000-row batch at 6,000 rows and growing.
 * Runs on a scratch copy of `notifications`, so no other test's rows or statistics matter.
 */
import { beforeAll, expect, test } from "bun:test";
import { uniqueName } from "../../harness/names.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { createScratchNotifications } from "../../harness/scratch-notifications.ts";
import {
  dedupeInsert,
  insertNotifications,
  type NotificationInput,
} from "../../src/adapters/notification-store.ts";

const sql = useTestSchema("dedupe_plan").connect({ connectionsMax: 2 });
const table = uniqueName("dedupe_plan").replace(/[^a-z0-9_]/g, "_");
const clientIds = [crypto.randomUUID(), crypto.randomUUID()];
const batchRows = 2000;

beforeAll(async () => {
  await createScratchNotifications(sql, table);
  await sql.unsafe(`ANALYZE ${table}`); // statistics of an empty table: the trap
});

const scopes = ["", `client:${clientIds[0]}`, "shared:plan-test"];

function batch(first: number): NotificationInput[] {
  return Array.from({ length: batchRows }, (_, k) => ({
    clientId: clientIds[k % clientIds.length] as string,
    scope: scopes[(first + k) % scopes.length] as string,
    route: "",
    alertId: `alert-${first + k}`,
    severity: "HIGH",
    source: "plan-test",
    name: "a",
    context: {},
    ruleIds: [crypto.randomUUID()],
    eventTimeMs: Date.now(),
  }));
}

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  Plans?: PlanNode[];
}

function scansOf(node: PlanNode, relation: string): string[] {
  const own = node["Relation Name"] === relation ? [node["Node Type"]] : [];
  return own.concat((node.Plans ?? []).flatMap((child) => scansOf(child, relation)));
}

test("with empty-table statistics, existing rows are looked up by index, never by scanning the table", async () => {
  for (let first = 0; first < 3 * batchRows; first += batchRows) {
    expect(await insertNotifications(sql, batch(first), table)).toHaveLength(batchRows);
  }
  // Half of the next batch exists already (RECEIVED, so re-announced), half is new.
  const next = batch(2 * batchRows + batchRows / 2);
  const { text, params } = dedupeInsert(next, table);
  const [row] = await sql.unsafe<{ "QUERY PLAN": [{ Plan: PlanNode }] }[]>(
    `EXPLAIN (FORMAT JSON) ${text}`,
    params,
  );
  const plan = row?.["QUERY PLAN"][0].Plan;
  if (!plan) throw new Error("EXPLAIN returned no plan");
  const scans = scansOf(plan, table);
  expect(scans).toContain("Index Scan");
  expect(scans).not.toContain("Seq Scan");

  const returned = await insertNotifications(sql, next, table);
  expect(returned).toHaveLength(batchRows);
  const [count] = await sql.unsafe<{ rows: string }[]>(`SELECT count(*) AS rows FROM ${table}`);
  expect(Number(count?.rows)).toBe(3 * batchRows + batchRows / 2);

  // The same (client, alert id) in another scope is a row of its own; in the same scope, the row found.
  const moved = next.map((row) => ({ ...row, scope: `${row.scope}-other` }));
  const inserted = await insertNotifications(sql, moved.slice(0, 10), table);
  expect(inserted).toHaveLength(10);
  const [after] = await sql.unsafe<{ rows: string }[]>(`SELECT count(*) AS rows FROM ${table}`);
  expect(Number(after?.rows)).toBe(3 * batchRows + batchRows / 2 + 10);
  const again = await insertNotifications(sql, moved.slice(0, 10), table);
  expect(again.map((r) => r.id).sort()).toEqual(inserted.map((r) => r.id).sort());
  const [unchanged] = await sql.unsafe<{ rows: string }[]>(`SELECT count(*) AS rows FROM ${table}`);
  expect(Number(unchanged?.rows)).toBe(Number(after?.rows));
});
