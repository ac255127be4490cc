/**
 * The sender's own work measured alone, for the sender bench and the pipeline bench's CPU floor:
 *
 *   senderStatementsCeiling  the sender's Postgres work with no HTTP and no Kafka: fresh RECEIVED
 *       rows driven in this process through the real DeliveryStore as the sender drives it (claim
 *       batches with their endpoints one at a time, each followed by a dispatch: a SUCCESS attempt
 *       per pending endpoint, the status from decideStatus, recordAttempt), with a bounded number of
 *       dispatches in flight on a pool of the sender's size. Deletes its rows afterwards.
 *   fetchCeiling  Bun's fetch POSTing webhook bodies to a sink, a fixed number at a time.
 *
 * Each comes with the CPU it took (this process, Postgres, the broker, the whole machine).
 */
import {
  type AttemptRecord,
  type ClaimWithWork,
  DeliveryStore,
  deliveryStoreSettings,
  type StatusUpdate,
} from "../../src/adapters/delivery-store.ts";
import { connectPostgres, type Sql } from "../../src/adapters/postgres.ts";
import { toDeliveryResult } from "../../src/channels/types.ts";
import { decideStatus } from "../../src/core/delivery-status.ts";
import { classifyHttpStatus } from "../../src/core/retry.ts";
import { reclaim, retrying } from "./common.ts";
import { type CpuUse, startCpuMeter } from "./cpu.ts";

/** What src/stages/sender/main.ts gives its DeliveryStore: its pool size (and settings) and LEASE_MS default. */
const senderConnectionsMax = 10;
const senderLeaseMs = 30_000;
const insertChunk = 20_000;
const tablesWritten = ["notifications", "deliveries"];

/** A run's clients, each with one rule and one webhook endpoint (index i ~ client i). */
export interface BenchClients {
  clientIds: string[];
  ruleIds: string[];
}

export function newClients(count: number): BenchClients {
  const clientIds = Array.from({ length: count }, () => crypto.randomUUID());
  return { clientIds, ruleIds: clientIds.map(() => crypto.randomUUID()) };
}

/** Inserts the clients (named `<namePrefix><n>`), their rules and one webhook endpoint each. */
export async function insertClients(
  sql: Sql,
  namePrefix: string,
  hookUrl: (clientId: string) => string,
  { clientIds, ruleIds }: BenchClients,
): Promise<void> {
  await sql.unsafe(
    `INSERT INTO clients (id, name) SELECT id, $2 || n
     FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, n)`,
    [clientIds, namePrefix] as never[],
  );
  await sql.unsafe(
    `INSERT INTO rules (id, client_id, severity, source, name)
     SELECT rule_id, client_id, 'HIGH', 'bench-source', 'bench-alert' FROM unnest($1::uuid[], $2::uuid[]) AS t(rule_id, client_id)`,
    [ruleIds, clientIds] as never[],
  );
  await sql.unsafe(
    `INSERT INTO endpoints (rule_id, client_id, type, value, secret)
     SELECT rule_id, client_id, 'webhook', url, 'bench-secret' FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS t(rule_id, client_id, url)`,
    [ruleIds, clientIds, clientIds.map(hookUrl)] as never[],
  );
}

/** Deletes the clients; their rules, endpoints, notifications and deliveries cascade. */
export async function deleteClients(sql: Sql, clientIds: readonly string[]): Promise<void> {
  await deleteNotifications(sql, clientIds);
  await retrying(() => sql.unsafe("DELETE FROM clients WHERE id = ANY($1::uuid[])", [clientIds] as never[]));
}

/**
 * Inserts `count` RECEIVED notifications round-robin over the clients (notification i belongs to
 * client i % clients, alert id `<alertPrefix>-<i>`), safety net an hour out so that no scheduler
 * claims them; returns their ids in that order.
 */
export async function insertReceived(
  sql: Sql,
  { clientIds, ruleIds }: BenchClients,
  alertPrefix: string,
  count: number,
): Promise<string[]> {
  const ids: string[] = [];
  const eventTimeMs = Date.now();
  for (let first = 0; first < count; first += insertChunk) {
    const indexes = Array.from({ length: Math.min(insertChunk, count - first) }, (_, k) => first + k);
    const rows = await sql.unsafe<{ id: string }[]>(
      `INSERT INTO notifications (client_id, alert_id, severity, source, name, context, rule_ids, event_time, next_attempt_at)
       SELECT client_id, alert_id, 'HIGH', 'bench-source', 'bench-alert', context::jsonb, rule_ids::uuid[], to_timestamp($5::float8 / 1000.0),
              now() + interval '1 hour'
       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS t(client_id, alert_id, context, rule_ids)
       RETURNING id`,
      [
        indexes.map((i) => clientIds[i % clientIds.length]),
        indexes.map((i) => `${alertPrefix}-${i}`),
        indexes.map((i) => JSON.stringify({ host: `host-${i % 500}.example.internal`, region: "eu-west-1" })),
        indexes.map((i) => `{${ruleIds[i % ruleIds.length]}}`),
        eventTimeMs,
      ] as never[],
    );
    for (const row of rows) ids.push(String(row.id));
  }
  return ids;
}

/** Deletes the clients' notifications (deliveries cascade). */
export async function deleteNotifications(sql: Sql, clientIds: readonly string[]): Promise<void> {
  await retrying(() =>
    sql.unsafe("DELETE FROM notifications WHERE client_id = ANY($1::uuid[])", [clientIds] as never[]),
  );
}

/** Row writes per notification of the clients' rows, counted from the rows (attempts, deliveries, status). */
export async function rowWrites(sql: Sql, clientIds: readonly string[]) {
  const [writes] = await retrying(() =>
    sql.unsafe<{ rows: string; claims: string; terminal: string; retry: string; deliveries: string }[]>(
      `SELECT count(*) AS rows, sum(attempts) AS claims,
              count(*) FILTER (WHERE status IN ('SENT', 'FAILED')) AS terminal,
              count(*) FILTER (WHERE status = 'RETRY') AS retry,
              (SELECT count(*) FROM deliveries d WHERE d.notification_id = ANY(array_agg(n.id))) AS deliveries
       FROM notifications n WHERE client_id = ANY($1::uuid[])`,
      [clientIds] as never[],
    ),
  );
  const rows = Number(writes?.rows ?? 0);
  const perNotification = {
    insert: 1,
    claimUpdates: Number(writes?.claims ?? 0) / rows,
    deliveryInserts: Number(writes?.deliveries ?? 0) / rows,
    statusUpdates: (Number(writes?.terminal ?? 0) + Number(writes?.retry ?? 0)) / rows,
  };
  const total =
    perNotification.insert +
    perNotification.claimUpdates +
    perNotification.deliveryInserts +
    perNotification.statusUpdates;
  return { rows, perNotification, total };
}

/** claim: DeliveryStore.claimWithWork, the claim and the endpoints in one statement. */
const statementKinds = ["claim", "recordAttempt"] as const;
type StatementKind = (typeof statementKinds)[number];

/** Wall time of DeliveryStore calls by kind; calls overlapping one another are each counted in full. */
class StatementClock {
  readonly calls: Record<StatementKind, number> = { claim: 0, recordAttempt: 0 };
  readonly totalMs: Record<StatementKind, number> = { claim: 0, recordAttempt: 0 };

  async time<T>(kind: StatementKind, work: () => Promise<T>): Promise<T> {
    const startMs = performance.now();
    try {
      return await work();
    } finally {
      this.calls[kind]++;
      this.totalMs[kind] += performance.now() - startMs;
    }
  }

  meanMs(): Record<StatementKind, number> {
    return Object.fromEntries(
      statementKinds.map((kind) => [kind, this.totalMs[kind] / this.calls[kind]]),
    ) as Record<StatementKind, number>;
  }
}

/** What the webhook channel makes of the sink's 200. */
const delivered = toDeliveryResult(classifyHttpStatus(200, new Headers()), 1, { httpStatus: 200 });

/**
 * Dispatcher.dispatch without the HTTP: the pending endpoints of the claimed rows, each answered
 * 200 at once, the statuses from decideStatus, and one recordAttempt.
 */
async function dispatchDelivered(
  store: DeliveryStore,
  clock: StatementClock,
  { claimed, work }: ClaimWithWork,
): Promise<void> {
  if (claimed.length === 0) return;
  const attempts: AttemptRecord[] = [];
  const updates: StatusUpdate[] = [];
  for (const notification of claimed) {
    const { pending, deliveredEarlier, permanentEarlier } = work.get(notification.id) ?? {
      pending: [],
      deliveredEarlier: 0,
      permanentEarlier: 0,
    };
    for (const endpoint of pending)
      attempts.push({
        notificationId: notification.id,
        attempt: notification.attempts,
        endpointId: endpoint.id,
        channel: endpoint.type,
        outcome: delivered.outcome,
        httpStatus: delivered.httpStatus ?? null,
        smtpReply: null,
        latencyMs: delivered.latencyMs,
        error: null,
      });
    const decision = decideStatus(
      {
        results: pending.map(() => delivered),
        deliveredEarlier,
        permanentEarlier,
        attemptsMade: notification.attempts,
      },
      Math.random,
    );
    updates.push({ notificationId: notification.id, attempts: notification.attempts, decision });
  }
  await clock.time("recordAttempt", () => store.recordAttempt(attempts, updates));
}

export interface SenderStatementsCeiling {
  notificationsPerS: number;
  seconds: number;
  batchSize: number;
  dispatchesInFlight: number;
  calls: Record<StatementKind, number>;
  msPerStatement: Record<StatementKind, number>;
  cpu: CpuUse;
}

/**
 * The sender's Postgres work alone (see the header) over `count` fresh rows of the clients, which
 * must have no notifications yet: the rows are checked to have had one claim, one delivery and one
 * status update each, then deleted, and the tables vacuumed.
 */
export async function senderStatementsCeiling(
  sql: Sql,
  clients: BenchClients,
  options: { alertPrefix: string; count: number; batchSize: number; dispatchesInFlight: number },
): Promise<SenderStatementsCeiling> {
  const { alertPrefix, count, batchSize, dispatchesInFlight } = options;
  const pool = connectPostgres({ connectionsMax: senderConnectionsMax, settings: deliveryStoreSettings });
  const store = new DeliveryStore(pool, senderLeaseMs);
  const clock = new StatementClock();
  try {
    const ids = await insertReceived(sql, clients, alertPrefix, count);
    const cpu = startCpuMeter();
    const running = new Set<Promise<void>>();
    for (let first = 0; first < ids.length; first += batchSize) {
      const claimed = await clock.time("claim", () =>
        store.claimWithWork(ids.slice(first, first + batchSize)),
      );
      const dispatch: Promise<void> = dispatchDelivered(store, clock, claimed).finally(() =>
        running.delete(dispatch),
      );
      running.add(dispatch);
      while (running.size >= dispatchesInFlight) await Promise.race(running);
    }
    await Promise.all(running);
    const used = cpu();
    const writes = await rowWrites(sql, clients.clientIds);
    const { claimUpdates, deliveryInserts, statusUpdates } = writes.perNotification;
    if (writes.rows !== count || claimUpdates !== 1 || deliveryInserts !== 1 || statusUpdates !== 1)
      throw new Error(
        `sender statements: not one claim, delivery and status each: ${JSON.stringify(writes)}`,
      );
    return {
      notificationsPerS: count / used.seconds,
      seconds: used.seconds,
      batchSize,
      dispatchesInFlight,
      calls: clock.calls,
      msPerStatement: clock.meanMs(),
      cpu: used,
    };
  } finally {
    await pool.end({ timeout: 5 });
    await deleteNotifications(sql, clients.clientIds);
    await reclaim(sql, tablesWritten);
  }
}

export interface PostCeiling {
  requestsPerS: number;
  /** The machine's CPU (this process's client side and the sink) over the POSTs. */
  cpu: CpuUse;
}

/**
 * `count` calls of `post` (one POST, resolving to its HTTP status), `concurrency` at a time: the
 * loop every webhook ceiling shares, whichever client it measures.
 */
export async function postCeiling(
  label: string,
  options: { count: number; concurrency: number },
  post: () => Promise<number>,
): Promise<PostCeiling> {
  const { count, concurrency } = options;
  const cpu = startCpuMeter();
  let started = 0;
  let failed = 0;
  const worker = async () => {
    while (started < count) {
      started++;
      const status = await post();
      if (status < 200 || status > 299) failed++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const used = cpu();
  if (failed > 0) throw new Error(`${label}: ${failed} of ${count} POSTs were not answered 2xx`);
  return { requestsPerS: count / used.seconds, cpu: used };
}

/** `count` POSTs of `body` to `url` with Bun's fetch, `concurrency` at a time, each answer read. */
export function fetchCeiling(
  url: string,
  options: { count: number; concurrency: number; body: string },
): Promise<PostCeiling> {
  return postCeiling("fetch ceiling", options, async () => {
    const response = await fetch(url, {
      method: "POST",
      body: options.body,
      headers: { "content-type": "application/json" },
    });
    await response.text();
    return response.status;
  });
}
