/** `alerting migrate`: applies migrations/ (MIGRATIONS_DIR) up to the newest, then exits. */
import { migrate } from "../adapters/migrations.ts";
import { connectPostgres } from "../adapters/postgres.ts";
import { envString } from "../runtime/config.ts";
import { settingsOrExit } from "../runtime/service.ts";

/** Read before connecting, like every process's settings. */
const { migrationsDir } = settingsOrExit("migrate", () => ({
  migrationsDir: envString("MIGRATIONS_DIR", "migrations"),
}));
const sql = connectPostgres({ connectionsMax: 1 });
try {
  const applied = await migrate(sql, migrationsDir);
  console.log(`migrate: ${applied.length === 0 ? "up to date" : `applied ${applied.join(", ")}`}`);
} finally {
  await sql.end();
}
