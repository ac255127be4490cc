/**
 * A Postgres schema of one test file's own, so that no test sees another's rows: created and migrated
 * before the file's tests, dropped after them. One call at the top of a file:
 *
 *   const db = useTestSchema("rule_service");
 *
 * then `db.sql` for the file's queries, `db.connect({...})` for a pool with other options, and
 * `POSTGRES_URL: db.url` in the environment of every stage process the file starts. Everything in
 * the database is per schema (tables, the rules_snapshot_version sequence, schema_migrations) except
 * NOTIFY channels and advisory locks, which are per database: a listener may wake for another file's
 * change and read nothing new of its own, and runners only wait for one another.
 */
import { afterAll, beforeAll } from "bun:test";
import { join } from "node:path";
import { migrate } from "../src/adapters/migrations.ts";
import { connectPostgres, type PostgresOptions, type Sql } from "../src/adapters/postgres.ts";
import { assert } from "../src/core/assert.ts";
import { infraUrls } from "../src/runtime/env.ts";

export interface TestSchema {
  /** Unique to this run of the file: `<prefix>_<16 random hex digits>`. */
  readonly name: string;
  /** POSTGRES_URL whose connections use the schema (search_path): for the stages the file starts. */
  readonly url: string;
  /** A pool in the schema, ended when the schema is dropped. */
  readonly sql: Sql;
  /** Another pool in the schema, with other options; it too is ended when the schema is dropped. */
  connect(options?: Omit<PostgresOptions, "url">): Sql;
}

const migrationsDir = join(new URL("..", import.meta.url).pathname, "migrations");

/** The URL of the schema `name` in the database POSTGRES_URL names. */
function schemaUrl(name: string): string {
  const url = new URL(infraUrls.postgresUrl);
  url.searchParams.set("search_path", name);
  return url.toString();
}

/**
 * Registers the schema's creation (with every migration, or none when `migrated` is false: a file
 * that makes its own tables) before the file's tests, and its drop after every other afterAll of the
 * file, so that the file's own clean-up (stopping stages, ending pools) still finds it.
 */
export function useTestSchema(prefix: string, options: { migrated?: boolean } = {}): TestSchema {
  const name = `${prefix}_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  // Spliced into CREATE and DROP unquoted: a plain lower-case identifier within Postgres's 63 bytes.
  assert(/^[a-z_][a-z0-9_]{0,62}$/.test(name), `schema name ${name}`);
  const url = schemaUrl(name);
  const pools: Sql[] = [];
  const connect = (more: Omit<PostgresOptions, "url"> = {}) => {
    const pool = connectPostgres({ idleTimeoutSeconds: 1, ...more, url });
    pools.push(pool);
    return pool;
  };
  const sql = connect();
  beforeAll(async () => {
    await sql.unsafe(`CREATE SCHEMA ${name}`);
    if (options.migrated !== false) await migrate(sql, migrationsDir);
  });
  // afterAll hooks run in the order they were registered; this one is registered once the file's
  // top level has run (and with it the file's own hooks), so it runs last. A top-level await before
  // the file's own afterAll would let it in earlier: call this before any.
  queueMicrotask(() =>
    afterAll(async () => {
      // Bounded: postgres.js's end() can wait for good on a connection the server terminated.
      await Promise.all(pools.map((pool) => pool.end({ timeout: 2 })));
      const admin = connectPostgres({ connectionsMax: 1, idleTimeoutSeconds: 1 });
      try {
        await admin.unsafe(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
      } finally {
        await admin.end();
      }
    }),
  );
  return { name, url, sql, connect };
}
