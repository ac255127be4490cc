/**
 * The rules COPY against the real Postgres: what the server sends is parsed into exactly the rules a
 * plain SELECT returns, whatever the text holds, and a parse error leaves the connection usable.
 */
import { expect, test } from "bun:test";
import { useTestSchema } from "../../harness/postgres.ts";
import { prng } from "../../harness/random-rules.ts";
import type { TransactionSql } from "../../src/adapters/postgres.ts";
import { copyEnabledRules, loadRulesSnapshot } from "../../src/adapters/rule-source.ts";
import { RuleCopyError } from "../../src/adapters/rules-copy.ts";
import { decodeSnapshot, encodeSnapshot, snapshotGrants, snapshotRules } from "../../src/core/snapshot.ts";
import {
  describeGrants,
  describeRules,
  enabledRulesOf,
  insertRule,
  ofClients,
  usePostgresFixture,
} from "./helpers.ts";

const db = useTestSchema("rule_source");
const { sql, changes, ownClient, ownSharedScope } = usePostgresFixture(db, 2);

// What COPY's text format would escape, multi-byte UTF-8, and text that looks like COPY syntax.
const tricky = [
  "tab\there",
  "new\nline",
  "cr\r\nlf",
  "back\\slash",
  "\\N",
  "\\.",
  "'quoted' \"twice\"",
  "Zürich ☃",
  "🚨 p1",
  " ",
  "é".repeat(199), // 398 bytes; a source adds a digit, up to the 200 characters allowed
];

test("the COPY path reads exactly the enabled rules a SELECT returns, whatever their text", async () => {
  const random = prng(42);
  const clients = [await ownClient(), await ownClient()];
  const severities = ["LOW", "MEDIUM", "HIGH", "CRITICAL", "*"];
  const pick = <T>(values: readonly T[]) => values[Math.floor(random() * values.length)] as T;
  const seen = new Set<string>();
  for (let i = 0; i < 300; i++) {
    const fields = {
      severity: pick(severities),
      source: random() < 0.3 ? "*" : `${pick(tricky)}${Math.floor(random() * 4)}`,
      name: random() < 0.3 ? "*" : pick(tricky),
      enabled: random() < 0.8,
    };
    const client = pick(clients);
    const key = `${client}|${fields.severity}|${fields.source}|${fields.name}`;
    if (seen.has(key) || (fields.severity === "*" && fields.source === "*" && fields.name === "*")) continue;
    seen.add(key);
    await insertRule(changes, client, fields);
  }
  const expected = await enabledRulesOf(sql, clients);
  expect(expected.length).toBeGreaterThan(100);
  const snapshot = await loadRulesSnapshot(sql);
  expect(describeRules(ofClients(snapshotRules(snapshot), clients))).toEqual(expected);
  for (const text of tricky) expect(snapshot.strings).toContain(text);
});

test("grants of shared scopes are read beside the rules; grants to clients without enabled rules are left out", async () => {
  const [withRules, disabledOnly, without] = [await ownClient(), await ownClient(), await ownClient()];
  await insertRule(changes, withRules, { name: "granted" });
  await insertRule(changes, disabledOnly, { name: "off", enabled: false });
  const first = await ownSharedScope([withRules, disabledOnly, without]);
  const second = await ownSharedScope([withRules]);
  const grantsOf = async () => {
    const owned = new Set([withRules, disabledOnly, without]);
    return describeGrants(snapshotGrants(await loadRulesSnapshot(sql)).filter((g) => owned.has(g.clientId)));
  };
  expect(await grantsOf()).toEqual(
    describeGrants([
      { scope: first.name, clientId: withRules },
      { scope: second.name, clientId: withRules },
    ]),
  );
  await changes`DELETE FROM scope_grants WHERE scope_id = ${second.id}`;
  await changes`UPDATE rules SET enabled = true WHERE client_id = ${disabledOnly}`;
  expect(await grantsOf()).toEqual(
    describeGrants([
      { scope: first.name, clientId: withRules },
      { scope: first.name, clientId: disabledOnly },
    ]),
  );
});

/** A temporary table with the rules' columns and `rows` rules, row i named by the SQL `name`. */
async function temporaryRules(tx: TransactionSql, rows: number, name = "'n'") {
  await tx`CREATE TEMPORARY TABLE temporary_rules (LIKE rules INCLUDING DEFAULTS) ON COMMIT DROP`;
  await tx`ALTER TABLE temporary_rules ALTER COLUMN name DROP NOT NULL`;
  await tx.unsafe(`
    INSERT INTO temporary_rules (client_id, severity, source, name)
    SELECT gen_random_uuid(), 'LOW', 'src', ${name} FROM generate_series(1, ${rows}) AS i`);
}

// ~120 KB: the last socket read holds the end of the COPY and more than the stream buffers before
// pausing the socket (16 KB), so the connection hung in the next statement on every run before the fix.
test("the connection stays usable after a COPY whose end arrives with many rows", async () => {
  const counts = await sql.begin(async (tx) => {
    await temporaryRules(tx, 2000);
    const seen: number[] = [];
    for (let i = 0; i < 10; i++) {
      seen.push((await copyEnabledRules(tx, "temporary_rules")).ruleCount);
      await tx`SELECT 1`;
    }
    return seen;
  });
  expect(counts).toEqual(Array(10).fill(2000));
});

test("a parse error drains the stream and leaves the connection usable", async () => {
  const result = await sql.begin(async (tx) => {
    await temporaryRules(tx, 1000, "CASE WHEN i = 500 THEN NULL ELSE 'n' END");
    const error = await copyEnabledRules(tx, "temporary_rules").catch((e: unknown) => e);
    const [row] = await tx<{ one: number }[]>`SELECT 1 AS one`;
    return { error, one: row?.one };
  });
  expect(result.error).toBeInstanceOf(RuleCopyError);
  expect(String(result.error)).toContain("row 499: field 5 is NULL");
  expect(result.one).toBe(1);
});

test("a rule whose stored settings are invalid keeps the defaults and is reported; the others keep theirs", async () => {
  const client = await ownClient();
  const good = await insertRule(changes, client, { name: "good-settings" });
  const bad = await insertRule(changes, client, { name: "bad-settings" });
  // Written around the API, which would refuse both values.
  await sql`UPDATE rules SET group_by = '{source}', send_resolved = false WHERE id = ${good}`;
  await sql`UPDATE rules SET mute_windows = '{"someday 25:00-26:00"}', group_by = '{source,source}' WHERE id = ${bad}`;
  const reported: [string, string][] = [];
  const snapshot = decodeSnapshot(
    encodeSnapshot(await loadRulesSnapshot(sql, (ruleId, problem) => reported.push([ruleId, problem]))),
  );
  expect(reported).toEqual([[bad, 'group_by: label "source" is listed twice']]);
  const policies = new Map(snapshot.policies.map((entry) => [entry.ruleId, entry.policy]));
  expect(policies.get(good)).toMatchObject({ groupBy: ["source"], sendResolved: false });
  expect(policies.has(bad)).toBe(false);
  expect(snapshotRules(snapshot).some((rule) => rule.ruleId === bad)).toBe(true);
});
