import { create, toBinary } from "@bufbuild/protobuf";
import type { Sql } from "../../adapters/postgres.ts";
import { RuleAction, RuleChangedSchema } from "../../gen/alerting/v1/rule_pb.ts";
import { DeadlineError, failureLatch, settleWithin } from "../../runtime/deadline.ts";
import { type RuleChange, ruleOutboxChannel } from "./outbox.ts";

export interface PublishRecord {
  key: string;
  value: Uint8Array;
}

/** Resolves only once the broker acknowledged every record; rejects otherwise. */
export type Publish = (records: PublishRecord[]) => Promise<void>;

export interface OutboxRelayOptions {
  sql: Sql;
  publish: Publish;
  batchSize?: number;
  /** Backstop for a missed NOTIFY (e.g. while the listen connection reconnects). */
  pollIntervalMs?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** A publish that neither acknowledges nor fails in time is treated as failed. */
  publishTimeoutMs?: number;
  /**
   * A whole batch (lock, read, publish, mark sent) still pending after this long means a database
   * call that will never answer: the relay stops and `failed` rejects, so the service restarts.
   */
  batchTimeoutMs?: number;
  onError?: (error: unknown) => void;
}

export interface OutboxRelay {
  /** Rejects with a DeadlineError when a batch never settled; the relay has stopped by then. */
  readonly failed: Promise<never>;
  stop(timeoutMs?: number): Promise<void>;
}

const schemaVersion = 1;
// Advisory lock class of the relay; the second key is the schema, so relays of separate schemas
// (tests) do not exclude each other.
const relayLockClass = 0x52_4f_42; // "ROB"
const actions: Record<RuleChange["action"], RuleAction> = {
  CREATED: RuleAction.CREATED,
  UPDATED: RuleAction.UPDATED,
  DELETED: RuleAction.DELETED,
};

interface OutboxRow extends RuleChange {
  id: string;
  created_at: Date;
}

function toRecord(row: OutboxRow): PublishRecord {
  const event = create(RuleChangedSchema, {
    ruleId: row.rule_id,
    clientId: row.client_id,
    action: actions[row.action],
    version: BigInt(row.version),
    changedAtUnixMs: BigInt(row.created_at.getTime()),
    schemaVersion,
    changeId: BigInt(row.id),
  });
  return { key: row.rule_id, value: toBinary(RuleChangedSchema, event) };
}

function withTimeout(promise: Promise<void>, timeoutMs: number): Promise<void> {
  let timer: Timer | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`publish not acknowledged within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Publishes the oldest unsent rows and marks them sent, all in one transaction; returns how many.
 *
 * One relay at a time holds the advisory lock. Row locks with SKIP LOCKED would let a second relay
 * publish later rows while the first still holds earlier ones, breaking the per-rule order.
 * A crash between the broker's ack and the commit republishes the batch: delivery is at least once,
 * and consumers dedupe on change_id / version.
 */
async function relayBatch(
  sql: Sql,
  publish: Publish,
  batchSize: number,
  publishTimeoutMs: number,
): Promise<number> {
  return sql.begin(async (tx) => {
    const [lock] = await tx<{ locked: boolean }[]>`
      SELECT pg_try_advisory_xact_lock(${relayLockClass}, hashtext(current_schema())) AS locked`;
    if (!lock?.locked) return 0;
    const rows = await tx<OutboxRow[]>`
      SELECT id, rule_id, client_id, action, version, created_at FROM rule_outbox
      WHERE sent_at IS NULL ORDER BY id LIMIT ${batchSize}`;
    if (rows.length === 0) return 0;
    await withTimeout(publish(rows.map(toRecord)), publishTimeoutMs);
    await tx`UPDATE rule_outbox SET sent_at = now() WHERE id IN ${tx(rows.map((r) => r.id))}`;
    return rows.length;
  });
}

export async function startOutboxRelay(options: OutboxRelayOptions): Promise<OutboxRelay> {
  const {
    sql,
    publish,
    batchSize = 500,
    pollIntervalMs = 1000,
    backoffInitialMs = 100,
    backoffMaxMs = 10_000,
    publishTimeoutMs = 30_000,
    batchTimeoutMs = publishTimeoutMs + 30_000,
    onError = (error) => console.error("rule-service outbox relay: publish failed, backing off", error),
  } = options;
  let stopped = false;
  // Set by NOTIFY and cleared before each read, so a change committed mid-batch is not slept past.
  let notified = false;
  let interrupt: (() => void) | undefined;
  const { failed, fail } = failureLatch();

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        interrupt = undefined;
        resolve();
      }
      interrupt = done;
    });

  const listener = await sql.listen(ruleOutboxChannel, () => {
    notified = true;
    interrupt?.();
  });

  async function loop(): Promise<void> {
    let backoffMs = backoffInitialMs;
    while (!stopped) {
      notified = false;
      try {
        const relayed = await settleWithin(
          relayBatch(sql, publish, batchSize, publishTimeoutMs),
          batchTimeoutMs,
          "an outbox relay batch",
        );
        backoffMs = backoffInitialMs;
        if (relayed < batchSize && !notified && !stopped) await sleep(pollIntervalMs);
      } catch (error) {
        if (error instanceof DeadlineError) {
          fail(error);
          return;
        }
        onError(error);
        if (stopped) break;
        const untilMs = Date.now() + backoffMs;
        // NOTIFY must not cut a backoff short, or a busy table would hammer a broker that is down.
        while (!stopped && Date.now() < untilMs) await sleep(untilMs - Date.now());
        backoffMs = Math.min(backoffMs * 2, backoffMaxMs);
      }
    }
  }

  const running = loop();
  return {
    failed,
    /** Waits at most `timeoutMs` for the batch in flight: an unmarked batch is republished later. */
    async stop(timeoutMs = 5000) {
      stopped = true;
      interrupt?.();
      await Promise.race([running.then(() => listener.unlisten()), Bun.sleep(timeoutMs)]);
    },
  };
}
