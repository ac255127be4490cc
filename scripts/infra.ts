/**
 * The infrastructure the stages and tests need: Kafka (started here if needed), and Postgres and
 * Redis (started by the machine; POSTGRES_URL / REDIS_URL may point elsewhere, so we only check them).
 */
import Redis from "ioredis";
import postgres from "postgres";
import { infraUrls } from "../src/runtime/env.ts";
import { type BrokerStatus, ensureBroker } from "./kafka.ts";
import { SetupError } from "./process.ts";

const connectTimeoutSeconds = 5;

/** Checks Postgres and Redis first (fast failures), then makes sure a broker answers. */
export async function ensureInfra(): Promise<BrokerStatus> {
  await ensureDatabase(infraUrls.postgresUrl);
  await pingRedis(infraUrls.redisUrl);
  return await ensureBroker();
}

/** Creates the database named in `url` if it is missing, via the `postgres` database of that server. */
export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const database = decodeURIComponent(target.pathname.slice(1)) || "postgres";
  const adminUrl = new URL(url);
  adminUrl.pathname = "/postgres";
  const sql = postgres(adminUrl.toString(), {
    max: 1,
    connect_timeout: connectTimeoutSeconds,
    onnotice: () => {},
  });
  try {
    const rows = await sql`SELECT 1 FROM pg_database WHERE datname = ${database}`;
    if (rows.length === 0) {
      await sql`CREATE DATABASE ${sql(database)}`;
      console.log(`postgres: created database ${database}`);
    }
  } catch (error) {
    // 42P04: another process created it between our check and our CREATE.
    if ((error as { code?: string }).code === "42P04") return;
    throw new SetupError(
      `Postgres at ${target.host} (POSTGRES_URL) is not usable: ${(error as Error).message}; ` +
        "start it (service postgresql start) or point POSTGRES_URL at a running server",
    );
  } finally {
    await sql.end({ timeout: 1 });
  }
}

export async function pingRedis(url: string): Promise<void> {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: connectTimeoutSeconds * 1000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null, // one attempt: we want a quick answer, not a reconnect loop
  });
  // The socket error arrives as an event; the rejected promise only says "Connection is closed".
  let socketError: Error | undefined;
  redis.on("error", (error: Error) => {
    socketError = error;
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    throw new SetupError(
      `Redis at ${new URL(url).host} (REDIS_URL) is not reachable: ${(socketError ?? (error as Error)).message}; ` +
        "start it (service redis-server start) or point REDIS_URL at a running server",
    );
  } finally {
    redis.disconnect();
  }
}
