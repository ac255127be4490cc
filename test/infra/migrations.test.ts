import { expect, test } from "bun:test";
import { join } from "node:path";
import { useTestSchema } from "../../harness/postgres.ts";
import { migrate, readMigrations } from "../../src/adapters/migrations.ts";
import { deliveryRoute } from "../../src/core/grouping.ts";

// A schema of its own, left unmigrated, so that the test runs every migration itself.
const { sql } = useTestSchema("migrations", { migrated: false });
const migrationsDir = join(import.meta.dir, "../../migrations");

async function schemaTables(): Promise<string[]> {
  const rows = await sql<{ name: string }[]>`
    SELECT table_name AS name FROM information_schema.tables
    WHERE table_schema = current_schema() AND table_name <> 'schema_migrations' ORDER BY 1`;
  return rows.map((r) => r.name);
}

/** Each row's route, by alert id (column "alert_id" or "alert_key"). */
async function routesOf(clientId: string, table: string, column: string): Promise<Record<string, string>> {
  const rows = await sql.unsafe<{ key: string; route: string }[]>(
    `SELECT ${column} AS key, route FROM ${table} WHERE client_id = $1`,
    [clientId],
  );
  return Object.fromEntries(rows.map((r) => [r.key, r.route]));
}

test("migrations go up, down to zero, and up again", async () => {
  const versions = readMigrations(migrationsDir).map((m) => m.version);

  expect(await migrate(sql, migrationsDir)).toEqual(versions);
  const tablesAfterUp = await schemaTables();
  expect(tablesAfterUp.length).toBeGreaterThan(0);

  expect(await migrate(sql, migrationsDir, 0)).toEqual(versions.toReversed());
  expect(await schemaTables()).toEqual([]);

  expect(await migrate(sql, migrationsDir)).toEqual(versions);
  expect(await schemaTables()).toEqual(tablesAfterUp);
  expect(await migrate(sql, migrationsDir)).toEqual([]); // already at the newest: nothing to run
});

test("000018 gives rows and states written before routes the route the aggregator now computes", async () => {
  await migrate(sql, migrationsDir, 17);
  const [client] = await sql<
    { id: string }[]
  >`INSERT INTO clients (name) VALUES ('route-backfill') RETURNING id`;
  const clientId = (client as { id: string }).id;
  const rule = async (source: string, groupBy: string[], waitMs: number | null) => {
    const [row] = await sql<{ id: string }[]>`
      INSERT INTO rules (client_id, severity, source, name, group_by, group_wait_ms, group_alerts_max)
      VALUES (${clientId}, 'HIGH', ${source}, 'a', ${groupBy}, ${waitMs}, ${groupBy.length > 0 ? 5 : null})
      RETURNING id`;
    return (row as { id: string }).id;
  };
  const plain = await rule("plain", [], null);
  const grouped = await rule("grouped", ["team", "source", "é"], 0);
  // A disabled rule is not the evaluator's: its grouping does not count.
  const disabled = await rule("disabled", ["source"], null);
  await sql`UPDATE rules SET enabled = false WHERE id = ${disabled}`;
  const notification = async (alertId: string, ruleIds: string[]) => {
    await sql`
      INSERT INTO notifications (client_id, alert_id, severity, source, name, rule_ids, event_time, episode)
      VALUES (${clientId}, ${alertId}, 'HIGH', 's', 'a', ${ruleIds}::uuid[], now(), 1)`;
    await sql`
      INSERT INTO alert_states (client_id, scope, alert_key, episode, state, episode_started_at, last_event_at,
                                last_seen_at, last_notified_at)
      VALUES (${clientId}, '', ${alertId}, 1, 'firing', now(), now(), now(), now())`;
  };
  await notification("only-plain", [plain]);
  await notification("mixed", [plain, grouped]);
  await notification("disabled", [disabled, plain]);

  await migrate(sql, migrationsDir, 18);
  // group_interval_ms is absent: the SQL copy takes Alertmanager's default as deliveryRoute does.
  const expected = deliveryRoute({ groupBy: ["team", "source", "é"], groupWaitMs: 0, groupAlertsMax: 5 });
  expect(expected).toMatch(/^[0-9a-f]{32}$/);
  const routesNow = { "only-plain": "", mixed: expected, disabled: "" };
  expect(await routesOf(clientId, "notifications", "alert_id")).toEqual(routesNow);
  expect(await routesOf(clientId, "alert_states", "alert_key")).toEqual(routesNow);
});

test("000021 moves an alert's state and rows to the route of its one rule with mute windows, as the aggregator now computes it", async () => {
  await migrate(sql, migrationsDir, 20);
  const [client] = await sql<
    { id: string }[]
  >`INSERT INTO clients (name) VALUES ('mute-backfill') RETURNING id`;
  const clientId = (client as { id: string }).id;
  const night = "* 22:00-06:00 Europe/Berlin";
  const rule = async (source: string, muteWindows: string[], groupBy: string[] = [], enabled = true) => {
    const [row] = await sql<{ id: string }[]>`
      INSERT INTO rules (client_id, severity, source, name, group_by, mute_windows, enabled)
      VALUES (${clientId}, 'HIGH', ${source}, 'a', ${groupBy}, ${muteWindows}, ${enabled})
      RETURNING id`;
    return (row as { id: string }).id;
  };
  const muted = await rule("a", [night]);
  const otherMuted = await rule("b", [night]);
  const plain = await rule("c", []);
  const disabledPlain = await rule("d", [], [], false);
  const groupedMuted = await rule("e", [night], ["source"]);
  const grouped = deliveryRoute({ groupBy: ["source"] });
  const ownRoute = deliveryRoute({ groupBy: [], muteRuleId: muted });
  const row = async (alertId: string, episode: number, kind: string, ruleIds: string[], route = "") => {
    await sql`
      INSERT INTO notifications (client_id, alert_id, route, severity, source, name, rule_ids, event_time, episode, kind)
      VALUES (${clientId}, ${alertId}, ${route}, 'HIGH', 's', 'a', ${ruleIds}::uuid[], now(), ${episode}, ${kind})`;
  };
  const state = async (alertId: string, episode: number, route = "") => {
    await sql`
      INSERT INTO alert_states (client_id, scope, alert_key, route, episode, state, episode_started_at,
                                last_event_at, last_seen_at, last_notified_at)
      VALUES (${clientId}, '', ${alertId}, ${route}, ${episode}, 'firing', now(), now(), now(), now())`;
  };
  const episode = async (alertId: string, ruleIds: string[], route = "") => {
    await row(alertId, 1, "firing", ruleIds, route);
    await state(alertId, 1, route);
  };
  await episode("one-rule", [muted]);
  // A later row of the episode names another rule (added since): it moves with its route.
  await row("one-rule", 1, "repeat:1", [muted, plain]);
  await episode("with-disabled", [muted, disabledPlain]);
  await episode("with-plain", [muted, plain]);
  await episode("two-muted", [muted, otherMuted]);
  await episode("grouped", [groupedMuted], grouped);
  // The state's episode decides, and the whole route moves with it or stays: an older episode of
  // the one rule stays with a current one of two rules, and an older one of two goes with a current
  // one of the one rule, so that a route's episode numbers stay its state's.
  await row("current-two", 1, "firing", [muted]);
  await row("current-two", 1, "resolved", [muted]);
  await row("current-two", 2, "firing", [muted, plain]);
  await state("current-two", 2);
  await row("current-one", 1, "firing", [muted, plain]);
  await row("current-one", 2, "firing", [muted]);
  await state("current-one", 2);
  // A new aggregator already wrote the rule's route: nothing moves onto it.
  await episode("already-there", [muted]);
  await row("already-there", 1, "firing", [muted], ownRoute);

  await migrate(sql, migrationsDir, 21);
  const routes = await sql<{ alert_id: string; episode: number; kind: string; route: string }[]>`
    SELECT alert_id, episode, kind, route FROM notifications WHERE client_id = ${clientId}
    ORDER BY alert_id, route, episode, kind`;
  const own = (route: string) =>
    route === ownRoute ? "own" : route === "" ? "" : route === grouped ? "grouped" : "other";
  expect(routes.map((r) => `${r.alert_id}/${r.episode}/${r.kind}: ${own(r.route)}`)).toEqual([
    "already-there/1/firing: ",
    "already-there/1/firing: own",
    "current-one/1/firing: own",
    "current-one/2/firing: own",
    "current-two/1/firing: ",
    "current-two/1/resolved: ",
    "current-two/2/firing: ",
    "grouped/1/firing: other",
    "one-rule/1/firing: own",
    "one-rule/1/repeat:1: own",
    "two-muted/1/firing: ",
    "with-disabled/1/firing: own",
    "with-plain/1/firing: ",
  ]);
  expect(await routesOf(clientId, "alert_states", "alert_key")).toEqual({
    "one-rule": ownRoute,
    "with-disabled": ownRoute,
    "with-plain": "",
    "two-muted": "",
    grouped: deliveryRoute({ groupBy: ["source"], muteRuleId: groupedMuted }),
    "current-two": "",
    "current-one": ownRoute,
    "already-there": "",
  });
  const [groupedRow] = await sql<{ route: string }[]>`
    SELECT route FROM notifications WHERE client_id = ${clientId} AND alert_id = 'grouped'`;
  expect(groupedRow?.route).toBe(deliveryRoute({ groupBy: ["source"], muteRuleId: groupedMuted }));
});

test("000023 records the rules each firing episode told: its unmuted firing and reminder rows' rules", async () => {
  await migrate(sql, migrationsDir, 22);
  const [client] = await sql<
    { id: string }[]
  >`INSERT INTO clients (name) VALUES ('told-backfill') RETURNING id`;
  const clientId = (client as { id: string }).id;
  const [a, b, c, d] = [1, 2, 3, 4].map(() => crypto.randomUUID()).sort() as [string, string, string, string];
  const row = async (
    alertId: string,
    episode: number,
    kind: string,
    ruleIds: string[],
    options: { route?: string; mutedBy?: string } = {},
  ) => {
    const mutedBy = options.mutedBy ?? null;
    await sql`
      INSERT INTO notifications (client_id, alert_id, route, severity, source, name, rule_ids, event_time, episode, kind,
                                 status, muted_by_rule)
      VALUES (${clientId}, ${alertId}, ${options.route ?? ""}, 'HIGH', 's', 'a', ${ruleIds}::uuid[], now(), ${episode},
              ${kind}, ${mutedBy === null ? "SENT" : "SILENCED"}, ${mutedBy})`;
  };
  const state = async (alertId: string, episode: number, { state = "firing", notified = true } = {}) => {
    await sql`
      INSERT INTO alert_states (client_id, scope, alert_key, episode, state, episode_started_at, last_event_at,
                                last_seen_at, last_notified_at, notified)
      VALUES (${clientId}, '', ${alertId}, ${episode}, ${state}, now(), now(), now(), now(), ${notified})`;
  };
  // The current episode's firing and reminder rows count; an older episode, its resolution, another
  // route's rows and muted rows do not.
  await row("told", 1, "firing", [d]);
  await row("told", 1, "resolved", [d]);
  await row("told", 2, "firing", [b]);
  await row("told", 2, "repeat:1", [a, b]);
  await row("told", 2, "repeat:2", [c], { route: "another" });
  await state("told", 2);
  await row("unmuted-later", 1, "firing", [a], { mutedBy: a });
  await row("unmuted-later", 1, "repeat:1", [a]);
  await state("unmuted-later", 1);
  await row("still-muted", 1, "firing", [a], { mutedBy: a });
  await state("still-muted", 1, { notified: false });
  await row("resolved", 1, "firing", [a]);
  await state("resolved", 1, { state: "resolved" });
  await state("rows-deleted", 3);

  await migrate(sql, migrationsDir, 23);
  const states = await sql<{ alert_key: string; told: string[] | null }[]>`
    SELECT alert_key, array_to_json(told_rule_ids) AS told FROM alert_states
    WHERE client_id = ${clientId} ORDER BY alert_key`;
  expect(Object.fromEntries(states.map((s) => [s.alert_key, s.told]))).toEqual({
    told: [a, b],
    "unmuted-later": [a],
    "still-muted": null,
    resolved: null,
    "rows-deleted": null,
  });
});
