/** `alerting migrate`: applies migrations/ (MIGRATIONS_DIR) up to the newest, then exits. */
import { migrate } from "../adapters/migrations.ts";
import { connectPostgres } from "../adapters/postgres.ts";
import { envString } from "../runtime/config.ts";

const sql = connectPostgres({ connectionsMax: 1 });
try {
  const applied = await migrate(sql, envString("MIGRATIONS_DIR", "migrations"));
  console.log(`migrate: ${applied.length === 0 ? "up to date" : `applied ${applied.join(", ")}`}`);
} finally {
  await sql.end();
}
