import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { checkMigrations } from "../../scripts/migration-check.ts";

const repoRoot = join(import.meta.dir, "../..");
const brokenDir = "test/fixtures/broken-migrations";

describe("checkMigrations", () => {
  test("accepts the project's migrations", () => {
    const { versions, problems } = checkMigrations(join(repoRoot, "migrations"));
    expect(problems).toEqual([]);
    expect(versions.length).toBeGreaterThan(0);
  });

  test("reports every fault planted in the broken fixture", () => {
    const { problems } = checkMigrations(join(repoRoot, brokenDir));
    expect(problems).toEqual([
      "000005_f.sql: not named NNNNNN_name.up.sql or NNNNNN_name.down.sql",
      "version 0: outside every service's range (control plane 1-5, data plane 6-7, control plane 8, data plane 9, control plane 10, data plane 11-12, control plane 13, data plane 14+)",
      "version 2: duplicate up files 000002_b.up.sql, 000002_c.up.sql",
      "version 4: missing up file (have 000004_e.down.sql)",
      "version 3: missing (gap between 1 and 4)",
    ]);
  });
});

describe("./dev check-migrations", () => {
  const devCheck = (dir: string) =>
    Bun.spawnSync(["./dev", "check-migrations", dir], { cwd: repoRoot, stdout: "pipe", stderr: "pipe" });

  test("exits 0 on migrations/", () => {
    expect(devCheck("migrations").exitCode).toBe(0);
  });

  test("exits non-zero on the broken fixture and names the faults", () => {
    const result = devCheck(brokenDir);
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr.toString()).toContain("version 3: missing");
  });
});
