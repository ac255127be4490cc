import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { migrate, readMigrations } from "../../src/adapters/migrations.ts";
import { connectPostgres, type Sql } from "../../src/adapters/postgres.ts";
import { infraUrls } from "../../src/runtime/env.ts";

// A database of its own, so the shared `alerting` database is never touched.
const database = `alerting_test_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
const migrationsDir = join(import.meta.dir, "../../migrations");
const admin = connectPostgres({ url: withDatabase("postgres"), connectionsMax: 1, idleTimeoutSeconds: 1 });
let sql: Sql;

function withDatabase(name: string): string {
  const url = new URL(infraUrls.postgresUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function publicTables(): Promise<string[]> {
  const rows = await sql<{ name: string }[]>`
    SELECT table_name AS name FROM information_schema.tables
    WHERE table_schema = 'public' AND table_name <> 'schema_migrations' ORDER BY 1`;
  return rows.map((r) => r.name);
}

beforeAll(async () => {
  await admin`CREATE DATABASE ${admin(database)}`;
  sql = connectPostgres({ url: withDatabase(database), connectionsMax: 1, idleTimeoutSeconds: 1 });
});

afterAll(async () => {
  await sql?.end();
  await admin`DROP DATABASE IF EXISTS ${admin(database)} WITH (FORCE)`;
  await admin.end();
});

test("migrations go up, down to zero, and up again", async () => {
  const versions = readMigrations(migrationsDir).map((m) => m.version);

  expect(await migrate(sql, migrationsDir)).toEqual(versions);
  const tablesAfterUp = await publicTables();
  expect(tablesAfterUp.length).toBeGreaterThan(0);

  expect(await migrate(sql, migrationsDir, 0)).toEqual(versions.toReversed());
  expect(await publicTables()).toEqual([]);

  expect(await migrate(sql, migrationsDir)).toEqual(versions);
  expect(await publicTables()).toEqual(tablesAfterUp);
  expect(await migrate(sql, migrationsDir)).toEqual([]); // already at the newest: nothing to run
});
