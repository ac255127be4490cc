import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Sql, TransactionSql } from "./postgres.ts";

/**
 * A golang-migrate compatible runner: reads `NNNNNN_name.up.sql` / `.down.sql` unchanged and keeps
 * golang-migrate's own `schema_migrations(version, dirty)` table, so the real CLI can take over.
 * All work happens under a transaction-scoped advisory lock, so concurrent runners serialise.
 */
export interface Migration {
  version: number;
  name: string;
  upPath: string;
  downPath: string | undefined;
}

const fileNamePattern = /^(\d+)_(.+)\.(up|down)\.sql$/;
const advisoryLockKey = 7_414_220_551; // any constant shared by every runner of this schema

export function readMigrations(dir: string): Migration[] {
  const byVersion = new Map<number, Migration>();
  for (const file of readdirSync(dir).sort()) {
    const match = fileNamePattern.exec(file);
    if (!match) continue;
    const [, digits, name, direction] = match as unknown as [string, string, string, "up" | "down"];
    const version = Number(digits);
    const entry = byVersion.get(version) ?? { version, name, upPath: "", downPath: undefined };
    if (direction === "up") entry.upPath = join(dir, file);
    else entry.downPath = join(dir, file);
    byVersion.set(version, entry);
  }
  return [...byVersion.values()].sort((a, b) => a.version - b.version);
}

export class DirtyDatabaseError extends Error {
  constructor(readonly version: number) {
    super(`schema_migrations is dirty at version ${version}: fix the schema by hand, then set dirty=false`);
  }
}

async function currentVersion(tx: TransactionSql): Promise<number> {
  await tx`CREATE TABLE IF NOT EXISTS schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)`;
  const rows = await tx<
    { version: string; dirty: boolean }[]
  >`SELECT version, dirty FROM schema_migrations LIMIT 1`;
  const row = rows[0];
  if (!row) return 0;
  if (row.dirty) throw new DirtyDatabaseError(Number(row.version));
  return Number(row.version);
}

async function setVersion(tx: TransactionSql, version: number): Promise<void> {
  await tx`DELETE FROM schema_migrations`;
  if (version > 0) await tx`INSERT INTO schema_migrations (version, dirty) VALUES (${version}, false)`;
}

/** Migrates to `target` (default: the newest). Returns the versions applied, in order. */
export async function migrate(sql: Sql, dir: string, target?: number): Promise<number[]> {
  const migrations = readMigrations(dir);
  const goal = target ?? migrations.at(-1)?.version ?? 0;
  return (await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${advisoryLockKey})`;
    const from = await currentVersion(tx);
    const applied: number[] = [];
    if (goal >= from) {
      for (const m of migrations.filter((m) => m.version > from && m.version <= goal)) {
        await tx.unsafe(readFileSync(m.upPath, "utf8"));
        await setVersion(tx, m.version);
        applied.push(m.version);
      }
    } else {
      const downs = migrations.filter((m) => m.version <= from && m.version > goal).reverse();
      for (const m of downs) {
        if (!m.downPath) throw new Error(`migration ${m.version}_${m.name} has no down file`);
        await tx.unsafe(readFileSync(m.downPath, "utf8"));
        const previous = migrations.filter((p) => p.version < m.version).at(-1)?.version ?? 0;
        await setVersion(tx, previous);
        applied.push(m.version);
      }
    }
    return applied;
  })) as number[];
}
