/** A scratch copy of `notifications`, for a test or bench that must not share the real table's rows or statistics. */
import type { Sql } from "../src/adapters/postgres.ts";

export async function createScratchNotifications(sql: Sql, table: string): Promise<void> {
  await sql.unsafe(`CREATE TABLE ${table} (LIKE notifications INCLUDING ALL)`);
  // LIKE copies the id default, which would draw from notifications' sequence: give it its own.
  await sql.unsafe(`CREATE SEQUENCE ${table}_id_seq OWNED BY ${table}.id`);
  await sql.unsafe(`ALTER TABLE ${table} ALTER COLUMN id SET DEFAULT nextval('${table}_id_seq')`);
}
