/**
 * Keeps Redis `rules:snapshot` / `rules:version` equal to the enabled rules and the shared-scope grants in
 * Postgres.
 * Every rebuild is full: one COPY streamed into a columnar build, one encode (see `./dev bench snapshot`
 * for the cost at 1M rules), written only if its version is newer than what Redis holds.
 */
import type { Sql } from "../../adapters/postgres.ts";
import type { RedisClient } from "../../adapters/redis.ts";
import { advanceVersionPast, loadRulesSnapshot } from "../../adapters/rule-source.ts";
import {
  readSnapshotBytes,
  readSnapshotVersion,
  type SnapshotKeys,
  writeSnapshotIfNewer,
} from "../../adapters/snapshot-store.ts";
import {
  decodeSnapshot,
  encodeSnapshot,
  type Snapshot,
  SnapshotError,
  sameGrants,
  sameRules,
} from "../../core/snapshot.ts";
import type { Logger } from "../../runtime/log.ts";

export interface RebuildResult {
  version: bigint;
  ruleCount: number;
  grantCount: number;
  bytes: number;
  written: boolean;
}

export class RuleUpdater {
  constructor(
    private readonly sql: Sql,
    private readonly redis: RedisClient,
    private readonly keys: SnapshotKeys,
    private readonly logger: Logger,
  ) {}

  async rebuild(): Promise<RebuildResult> {
    return this.#write(await loadRulesSnapshot(this.sql));
  }

  /**
   * Compares Redis with Postgres and rebuilds when they differ: a snapshot missing (Redis wiped),
   * corrupt, or with other rules or grants than the database has (a lost event, a manual edit).
   */
  async reconcile(): Promise<"in-sync" | "repaired" | "unrepaired"> {
    const [stored, version] = await Promise.all([
      readSnapshotBytes(this.redis, this.keys),
      readSnapshotVersion(this.redis, this.keys),
    ]);
    let storedSnapshot: Snapshot | undefined;
    try {
      if (stored !== undefined && version !== undefined) storedSnapshot = decodeSnapshot(stored);
    } catch (error) {
      if (!(error instanceof SnapshotError)) throw error;
      this.logger.warn("stored snapshot is corrupt", { error });
    }
    const current = await loadRulesSnapshot(this.sql);
    if (
      storedSnapshot !== undefined &&
      sameRules(storedSnapshot, current) &&
      sameGrants(storedSnapshot, current)
    ) {
      return "in-sync";
    }
    this.logger.warn("rules snapshot drifted from Postgres, repairing", {
      storedRules: storedSnapshot?.ruleClient.length ?? null,
      databaseRules: current.ruleClient.length,
      storedGrants: storedSnapshot?.grantClient.length ?? null,
      databaseGrants: current.grantClient.length,
    });
    if ((await this.#write(current)).written) return "repaired";
    // Refused as older: Redis holds a version the build sequence has not reached. Move the
    // sequence past it; the next build is then newer than anything stored.
    const storedVersion = await readSnapshotVersion(this.redis, this.keys);
    if (storedVersion !== undefined) await advanceVersionPast(this.sql, storedVersion);
    if ((await this.rebuild()).written) return "repaired";
    this.logger.error("could not repair the rules snapshot: a newer one keeps appearing", {
      storedVersion: String(storedVersion),
    });
    return "unrepaired";
  }

  async #write(snapshot: Snapshot): Promise<RebuildResult> {
    const bytes = encodeSnapshot(snapshot);
    const { version } = snapshot;
    const written = await writeSnapshotIfNewer(this.redis, this.keys, bytes, version);
    const result = {
      version,
      ruleCount: snapshot.ruleClient.length,
      grantCount: snapshot.grantClient.length,
      bytes: bytes.byteLength,
      written,
    };
    this.logger.info("rules snapshot rebuilt", { ...result, version: String(version) });
    return result;
  }
}
