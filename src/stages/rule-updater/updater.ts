/**
 * Keeps Redis `rules:snapshot` / `rules:version` equal to the enabled rules in Postgres.
 * Every rebuild is full: one query, one columnar encode (see `./dev bench snapshot` for the cost at
 * 1M rules), written only if its version is newer than what Redis holds.
 */
import type { Sql } from "../../adapters/postgres.ts";
import type { RedisClient } from "../../adapters/redis.ts";
import { advanceVersionPast, loadEnabledRules } from "../../adapters/rule-source.ts";
import {
  readSnapshotBytes,
  readSnapshotVersion,
  type SnapshotKeys,
  writeSnapshotIfNewer,
} from "../../adapters/snapshot-store.ts";
import type { Rule } from "../../core/matching/types.ts";
import { severityPatternName } from "../../core/severity.ts";
import {
  buildSnapshot,
  decodeSnapshot,
  encodeSnapshot,
  SnapshotError,
  snapshotRules,
} from "../../core/snapshot.ts";
import type { Logger } from "../../runtime/log.ts";

export interface RebuildResult {
  version: bigint;
  ruleCount: number;
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
    const { version, rules } = await loadEnabledRules(this.sql);
    const bytes = encodeSnapshot(buildSnapshot(rules, version, BigInt(Date.now())));
    const written = await writeSnapshotIfNewer(this.redis, this.keys, bytes, version);
    const result = { version, ruleCount: rules.length, bytes: bytes.byteLength, written };
    this.logger.info("rules snapshot rebuilt", { ...result, version: String(version) });
    return result;
  }

  /**
   * Compares Redis with Postgres and rebuilds when they differ: a snapshot missing (Redis wiped),
   * corrupt, or with other rules than the database has (a lost event, a manual edit).
   */
  async reconcile(): Promise<"in-sync" | "repaired" | "unrepaired"> {
    const [stored, version] = await Promise.all([
      readSnapshotBytes(this.redis, this.keys),
      readSnapshotVersion(this.redis, this.keys),
    ]);
    let storedRules: Rule[] | undefined;
    try {
      if (stored !== undefined && version !== undefined) storedRules = snapshotRules(decodeSnapshot(stored));
    } catch (error) {
      if (!(error instanceof SnapshotError)) throw error;
      this.logger.warn("stored snapshot is corrupt", { error });
    }
    const current = await this.sql<
      { id: string; client_id: string; severity: string; source: string; name: string }[]
    >`
      SELECT id, client_id, severity, source, name FROM rules WHERE enabled`;
    if (storedRules !== undefined && sameRules(storedRules, current)) return "in-sync";
    this.logger.warn("rules snapshot drifted from Postgres, repairing", {
      storedRules: storedRules?.length ?? null,
      databaseRules: current.length,
    });
    if ((await this.rebuild()).written) return "repaired";
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
}

function ruleKey(ruleId: string, clientId: string, severity: string, source: string, name: string): string {
  return [ruleId, clientId, severity, source, name].join("\u0000");
}

function sameRules(
  stored: readonly Rule[],
  current: readonly { id: string; client_id: string; severity: string; source: string; name: string }[],
): boolean {
  if (stored.length !== current.length) return false;
  const keys = new Set(
    stored.map((r) => ruleKey(r.ruleId, r.clientId, severityPatternName(r.severity), r.source, r.name)),
  );
  return current.every((r) => keys.has(ruleKey(r.id, r.client_id, r.severity, r.source, r.name)));
}
