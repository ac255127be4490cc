import { expect, test } from "bun:test";
import { connectPostgres } from "../../src/adapters/postgres.ts";
import { connectRedis } from "../../src/adapters/redis.ts";

test("the alerting database answers a query", async () => {
  const sql = connectPostgres({ connectionsMax: 1, idleTimeoutSeconds: 1 });
  try {
    const [row] = await sql`SELECT current_database() AS name, 1 + 1 AS two`;
    expect(row).toEqual({ name: "alerting", two: 2 });
  } finally {
    await sql.end();
  }
});

test("Redis stores and returns a value under a unique key", async () => {
  const redis = connectRedis();
  const key = `test:infra:${crypto.randomUUID()}`;
  try {
    await redis.set(key, "round trip", "PX", 60_000); // expires even if the test dies before DEL
    expect(await redis.get(key)).toBe("round trip");
    expect(await redis.del(key)).toBe(1);
    expect(await redis.get(key)).toBeNull();
  } finally {
    redis.disconnect();
  }
});
