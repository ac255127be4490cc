import Redis from "ioredis";
import { infraUrls } from "../runtime/env.ts";

export type RedisClient = Redis;

/** An ioredis client that retries forever with a capped backoff, so a Redis restart is survived. */
export function connectRedis(url: string = infraUrls.redisUrl): RedisClient {
  return new Redis(url, {
    maxRetriesPerRequest: 3,
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2000),
    lazyConnect: false,
  });
}
