/**
 * The rules the evaluator matches with: a compiled matcher and the scope grants loaded from the Redis
 * snapshot, replaced as a whole when a newer version appears. A reload is noticed through pub/sub at once and through a
 * version poll as a backstop; a corrupt snapshot is refused and the last good matcher stays.
 */
import type { RedisClient } from "../../adapters/redis.ts";
import { readSnapshotBytes, readSnapshotVersion, type SnapshotKeys } from "../../adapters/snapshot-store.ts";
import { CompiledMatcher } from "../../core/matching/compiled.ts";
import { ScopeFilter } from "../../core/matching/scope.ts";
import type { Matcher } from "../../core/matching/types.ts";
import { PolicyBook } from "../../core/policy.ts";
import { SilenceBook } from "../../core/silence.ts";
import { decodeSnapshot, SnapshotError, snapshotGrants } from "../../core/snapshot.ts";
import type { Logger } from "../../runtime/log.ts";

export interface LoadedRules {
  matcher: Matcher;
  /** Which clients each alert scope reaches. */
  scopes: ScopeFilter;
  /** The open silences per client. */
  silences: SilenceBook;
  /** The rules' delivery settings and mute windows. */
  policies: PolicyBook;
  version: bigint;
  ruleCount: number;
}

export class RuleBook {
  #current: LoadedRules | undefined;
  #loading = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  #subscriber: RedisClient | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: SnapshotKeys,
    private readonly logger: Logger,
    private readonly onApplied: (loaded: LoadedRules, compileMs: number) => void = () => {},
  ) {}

  /** The matcher in force; a batch takes it once, so it never sees half of a swap. */
  get current(): LoadedRules | undefined {
    return this.#current;
  }

  async start(pollIntervalMs: number): Promise<void> {
    await this.refresh();
    this.#subscriber = this.redis.duplicate();
    await this.#subscriber.subscribe(this.keys.changed);
    this.#subscriber.on("message", () => void this.refresh());
    this.#timer = setInterval(() => void this.refresh(), pollIntervalMs);
  }

  /** Loads and compiles the stored snapshot if it is newer than the one in force. */
  async refresh(): Promise<void> {
    if (this.#loading) return;
    this.#loading = true;
    try {
      const version = await readSnapshotVersion(this.redis, this.keys);
      if (version === undefined || (this.#current && version <= this.#current.version)) return;
      const bytes = await readSnapshotBytes(this.redis, this.keys);
      if (bytes === undefined) return;
      const startedAt = performance.now();
      const snapshot = decodeSnapshot(bytes);
      if (this.#current && snapshot.version <= this.#current.version) return;
      const loaded = {
        matcher: CompiledMatcher.fromSnapshot(snapshot),
        scopes: new ScopeFilter(snapshotGrants(snapshot)),
        silences: new SilenceBook(snapshot.silences),
        policies: new PolicyBook(new Map(snapshot.policies.map((entry) => [entry.ruleId, entry.policy]))),
        version: snapshot.version,
        ruleCount: snapshot.ruleClient.length,
      };
      if (loaded.policies.invalidWindows.length > 0)
        this.logger.warn("mute windows skipped: they do not parse here", {
          windows: loaded.policies.invalidWindows,
        });
      this.#current = loaded;
      const compileMs = performance.now() - startedAt;
      this.logger.info("rules applied", {
        version: String(loaded.version),
        rules: loaded.ruleCount,
        grants: snapshot.grantClient.length,
        silences: snapshot.silences.length,
        policies: snapshot.policies.length,
        compileMs: Math.round(compileMs),
      });
      this.onApplied(loaded, compileMs);
    } catch (error) {
      if (!(error instanceof SnapshotError)) this.logger.warn("rules refresh failed", { error });
      else this.logger.error("refusing a corrupt rules snapshot; keeping the last good one", { error });
    } finally {
      this.#loading = false;
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#subscriber?.disconnect();
  }
}
