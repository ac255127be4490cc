/**
 * Keeps Redis `rules:snapshot` / `rules:version` equal to the enabled rules and the shared-scope grants in
 * Postgres.
 * Every rebuild is full: one COPY streamed into a columnar build, one encode (see `./dev bench snapshot`
 * for the cost at 1M rules), written only if its version is newer than what Redis holds.
 * Besides the rebuild per rule.changed batch, startSnapshotWatch keeps the snapshot right when no
 * record comes: Redis wiped, an event lost, the outbox relay or Kafka down.
 */
import type { Sql } from "../../adapters/postgres.ts";
import type { RedisClient } from "../../adapters/redis.ts";
import { advanceVersionPast, loadRulesSnapshot, rulesChangedChannel } from "../../adapters/rule-source.ts";
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
  samePolicies,
  sameRules,
  sameSilences,
} from "../../core/snapshot.ts";
import { DeadlineError, failureLatch, settleWithin } from "../../runtime/deadline.ts";
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
    return this.#write(await loadRulesSnapshot(this.sql, this.#invalidPolicy));
  }

  /** Whether Redis holds both keys; one that lost its data (restarted empty, flushed) has neither. */
  async isStored(): Promise<boolean> {
    return (await this.redis.exists(this.keys.snapshot, this.keys.version)) === 2;
  }

  /** Calls `onChange` after every committed rule, scope or grant change (Postgres NOTIFY, see rulesChangedChannel). */
  listenForChanges(onChange: () => void): Promise<{ unlisten(): Promise<void> }> {
    return this.sql.listen(rulesChangedChannel, onChange);
  }

  /**
   * Compares Redis with Postgres and rebuilds when they differ: a snapshot missing (Redis wiped),
   * corrupt, or with other rules, grants, rule settings or open silences than the database has (a lost event, a manual
   * edit).
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
    const current = await loadRulesSnapshot(this.sql, this.#invalidPolicy);
    if (
      storedSnapshot !== undefined &&
      sameRules(storedSnapshot, current) &&
      sameGrants(storedSnapshot, current) &&
      samePolicies(storedSnapshot, current) &&
      sameSilences(storedSnapshot, current, Number(current.builtAtUnixMs))
    ) {
      return "in-sync";
    }
    this.logger.warn("rules snapshot drifted from Postgres, repairing", {
      storedRules: storedSnapshot?.ruleClient.length ?? null,
      databaseRules: current.ruleClient.length,
      storedGrants: storedSnapshot?.grantClient.length ?? null,
      databaseGrants: current.grantClient.length,
      storedSilences: storedSnapshot?.silences.length ?? null,
      databaseSilences: current.silences.length,
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

  readonly #invalidPolicy = (ruleId: string, problem: string) =>
    this.logger.warn("a rule's stored settings are invalid; it keeps the defaults", { ruleId, problem });

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

export interface SnapshotWatchOptions {
  /** How often to check that the keys exist: the bound on how long a wiped Redis stays empty. */
  checkIntervalMs: number;
  /** How often a check is a full reconcile instead (rounded to a whole number of checks). */
  reconcileIntervalMs: number;
  /** The bound on each check and rebuild; one that does not settle in time fails the watch. */
  runTimeoutMs: number;
}

export interface SnapshotWatch {
  /**
   * Rejects with a DeadlineError when a check or rebuild did not settle within `runTimeoutMs` (a
   * Postgres or Redis call that never answers): the watch has stopped and the stage must exit.
   */
  readonly failed: Promise<never>;
  /** Stops after the check or rebuild in flight, waiting for it at most `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
}

/** Notifications closer together than this make one rebuild (a client saving many rules). */
const changeCoalesceMs = 20;

/**
 * Runs, one at a time: a rebuild after every committed rule change (Postgres NOTIFY, a backstop to
 * rule.changed that works while the outbox relay or Kafka is down), and every `checkIntervalMs` a
 * check that Redis still holds the snapshot (rebuilt at once if not), which every
 * `reconcileIntervalMs` is a full reconcile. An ordinary failure is logged and left to the next
 * change or check.
 */
export async function startSnapshotWatch(
  updater: RuleUpdater,
  logger: Logger,
  options: SnapshotWatchOptions,
): Promise<SnapshotWatch> {
  const reconcileEvery = Math.max(1, Math.round(options.reconcileIntervalMs / options.checkIntervalMs));
  const { failed, fail } = failureLatch();
  let running = true;
  let changed = false;
  let wake: () => void = () => {};
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = () => {};
        resolve();
      }
      wake = done;
    });
  const listener = await settleWithin(
    updater.listenForChanges(() => {
      changed = true;
      wake();
    }),
    options.runTimeoutMs,
    "LISTEN for rule changes",
  );

  const check = async (reconcile: boolean) => {
    if (!(await updater.isStored())) await updater.rebuild();
    else if (reconcile) await updater.reconcile();
  };

  const loop = (async () => {
    let checks = 0;
    let nextCheckAtMs = performance.now() + options.checkIntervalMs;
    while (running) {
      // A check overdue (the last rebuild ran past it) is due at once: a negative timer would warn.
      if (!changed) await pause(Math.max(0, nextCheckAtMs - performance.now()));
      if (!running) return;
      let what: string;
      let work: () => Promise<unknown>;
      if (changed) {
        await Bun.sleep(changeCoalesceMs);
        changed = false;
        what = "rebuild on a rule change";
        work = () => updater.rebuild();
      } else {
        nextCheckAtMs = performance.now() + options.checkIntervalMs;
        checks++;
        what = "snapshot check";
        work = () => check(checks % reconcileEvery === 0);
      }
      try {
        await settleWithin(work(), options.runTimeoutMs, `a ${what}`);
      } catch (error) {
        if (error instanceof DeadlineError) {
          fail(error);
          return;
        }
        // The next check (or change) tries again; a reconcile catches a change whose rebuild failed.
        logger.warn(`${what} failed`, { error });
      }
    }
  })();

  return {
    failed,
    async stop(timeoutMs = 5000) {
      running = false;
      wake();
      await Promise.race([loop.then(() => listener.unlisten()), Bun.sleep(timeoutMs)]);
    },
  };
}
