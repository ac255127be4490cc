/**
 * useTestSchema: the file's schema is migrated before its tests, and a connection made from its URL, as
 * a stage process makes one from POSTGRES_URL, works in it and in no other schema.
 */
import { afterAll, expect, test } from "bun:test";
import { readMigrations } from "../src/adapters/migrations.ts";
import { connectPostgres } from "../src/adapters/postgres.ts";
import { useTestSchema } from "./postgres.ts";

const db = useTestSchema("harness_schema");
const asStage = connectPostgres({ url: db.url, connectionsMax: 1, idleTimeoutSeconds: 1 });
const shared = connectPostgres({ connectionsMax: 1, idleTimeoutSeconds: 1 });

afterAll(async () => {
  await asStage.end();
  await shared.end();
});

test("the schema is the file's, migrated to the newest version", async () => {
  const newest = readMigrations(new URL("../migrations", import.meta.url).pathname).at(-1)?.version ?? 0;
  const [row] = await db.sql<{ schema: string; version: string }[]>`
    SELECT current_schema() AS schema, (SELECT version FROM schema_migrations) AS version`;
  expect({ schema: row?.schema, version: Number(row?.version) }).toEqual({
    schema: db.name,
    version: newest,
  });
});

test("rows written in the schema are seen through its URL and not in the shared schema", async () => {
  const name = `schema-test-${crypto.randomUUID()}`;
  await db.sql`INSERT INTO clients (name) VALUES (${name})`;
  const [stageView] = await asStage<{ schema: string; n: number }[]>`
    SELECT current_schema() AS schema, count(*)::int AS n FROM clients WHERE name = ${name}`;
  expect(stageView).toEqual({ schema: db.name, n: 1 });
  const [sharedView] = await shared<{ n: number }[]>`
    SELECT count(*)::int AS n FROM public.clients WHERE name = ${name}`;
  expect(sharedView?.n).toBe(0);
});
