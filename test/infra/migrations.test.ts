import { expect, test } from "bun:test";
import { join } from "node:path";
import { useTestSchema } from "../../harness/postgres.ts";
import { migrate, readMigrations } from "../../src/adapters/migrations.ts";

// A schema of its own, left unmigrated, so that the test runs every migration itself.
const { sql } = useTestSchema("migrations", { migrated: false });
const migrationsDir = join(import.meta.dir, "../../migrations");

async function schemaTables(): Promise<string[]> {
  const rows = await sql<{ name: string }[]>`
    SELECT table_name AS name FROM information_schema.tables
    WHERE table_schema = current_schema() AND table_name <> 'schema_migrations' ORDER BY 1`;
  return rows.map((r) => r.name);
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
