/**
 * The sender's view of Postgres: claim notifications under a lease, find their pending endpoints,
 * and record an attempt's deliveries and resulting statuses in one statement.
 *
 * `next_attempt_at` is when the scheduler should look at a non-terminal row by itself: the retry
 * time for RETRY, the lease expiry for SENDING, a safety net for RECEIVED.
 */
import type { Endpoint, Notification } from "../channels/types.ts";
import type { StatusDecision } from "../core/delivery-status.ts";
import { inIdOrder, prepared, type Sql } from "./postgres.ts";

export interface ClaimedNotification extends Notification {
  /** Attempts including this claim; fences the final status update against a later claimer. */
  attempts: number;
  /** Local time (performance.now()) just before the statement that leased the row. */
  leasedAtMs: number;
}

export interface EndpointWork {
  pending: Endpoint[];
  deliveredEarlier: number;
  permanentEarlier: number;
}

export interface AttemptRecord {
  notificationId: string;
  /** The claim's attempts count: one record per (notification, endpoint, attempt). */
  attempt: number;
  endpointId: string;
  channel: string;
  outcome: string;
  httpStatus: number | null;
  smtpReply: string | null;
  latencyMs: number;
  error: string | null;
}

export interface StatusUpdate {
  notificationId: string;
  attempts: number;
  decision: StatusDecision;
}

/** Claimed notifications with the endpoint work of each, from one statement. */
export interface ClaimWithWork {
  claimed: ClaimedNotification[];
  work: Map<string, EndpointWork>;
}

interface EndpointRow {
  notification_id: string;
  id: string;
  type: Endpoint["type"];
  value: string;
  secret: string | null;
  final_outcome: string | null;
}

/** A claimed notification as Postgres returns it (group-store.ts reads its group's rows alike). */
export interface ClaimedRow {
  id: string;
  client_id: string;
  alert_id: string;
  severity: Notification["severity"];
  source: string;
  name: string;
  context: Record<string, unknown>;
  rule_ids: string[];
  event_time: Date;
  kind: string;
  attempts: number;
}

// rule_ids as json: postgres.js parses json natively (JSON.parse), a uuid[] character by character.
const claimedColumns =
  "n.id, n.client_id, n.alert_id, n.severity, n.source, n.name, n.context, array_to_json(n.rule_ids) AS rule_ids, n.event_time, n.kind, n.attempts";

/** A notification row as the channels see it; the client is given apart (group rows leave it out). */
export function toNotification(
  row: Omit<ClaimedRow, "client_id" | "attempts">,
  clientId: string,
): Notification {
  return {
    id: String(row.id),
    clientId,
    alertId: row.alert_id,
    severity: row.severity,
    source: row.source,
    name: row.name,
    context: row.context,
    ruleIds: row.rule_ids,
    eventTime: row.event_time,
    kind: row.kind,
  };
}

function toClaimed(row: ClaimedRow, leasedAtMs: number): ClaimedNotification {
  return { ...toNotification(row, row.client_id), attempts: row.attempts, leasedAtMs };
}

/*
 * Array parameters as ready array literals: postgres.js passes a string through as is, where an
 * array would be serialized element by element (escaped twice over). Postgres parses the literal
 * against the statement's cast either way.
 */

/** Elements that never need quoting: bigint ids, uuids, finite numbers. */
function plainArray(values: readonly (string | number)[]): string {
  return `{${values.join(",")}}`;
}

/** Numbers or NULL. */
function nullableNumberArray(values: readonly (number | null)[]): string {
  let text = "{";
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (i > 0) text += ",";
    text += value === null || value === undefined ? "NULL" : String(value);
  }
  return `${text}}`;
}

const arrayElementSpecials = /[\\"]/g;

/** Any text or NULL: every element quoted, backslash and double quote escaped. */
function textArray(values: readonly (string | null)[]): string {
  let text = "{";
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (i > 0) text += ",";
    text +=
      value === null || value === undefined ? "NULL" : `"${value.replace(arrayElementSpecials, "\\$&")}"`;
  }
  return `${text}}`;
}

/*
 * Status tests written as CASE on purpose. A plain `status = 'SENDING'` (or IN (...)) implies the
 * predicate of the partial index notifications_due, and without fresh statistics the planner then
 * ANDs a scan of that whole index (every non-terminal row, and with autovacuum off every dead one)
 * with the primary-key lookup: measured 954 ms instead of 26 ms for a 2000-row status update, 48 ms
 * instead of 4 ms for a claim's row selection. A CASE implies nothing, so these statements can only
 * go through the primary key, whatever the statistics say.
 */

/** RECEIVED, or RETRY / SENDING (lease expired) whose time has come. */
const claimableNow = `CASE status WHEN 'RECEIVED' THEN true
             WHEN 'RETRY' THEN next_attempt_at <= now() WHEN 'SENDING' THEN next_attempt_at <= now() ELSE false END`;

/** Still SENDING under the claim we made (the attempts count fences a later claimer). */
const stillOurs = "CASE n.status WHEN 'SENDING' THEN n.attempts = v.attempts ELSE false END";

/** Claims the notifications of $1 that are claimable now under a lease of $2 ms; RETURNING follows. */
const claimByIds = `UPDATE notifications n
       SET status = 'SENDING', attempts = n.attempts + 1, updated_at = now(),
           lease_until = now() + make_interval(secs => $2::float8 / 1000), next_attempt_at = now() + make_interval(secs => $2::float8 / 1000)
       FROM (SELECT id FROM notifications
             WHERE id = ANY($1::bigint[]) AND ${claimableNow} AND group_key IS NULL
             ORDER BY id FOR NO KEY UPDATE SKIP LOCKED) claimable
       WHERE n.id = claimable.id`;

/**
 * Whether `e`'s address (type, value) already delivered notification `n` (alias given) or refused it
 * for good, through whichever endpoint row: the lowest id standing for an address can change between
 * attempts (a tenant adds an endpoint with the same URL, or disables the one that delivered). A first
 * attempt has no earlier deliveries: the lookup is skipped.
 */
const finalOutcome = (n: string) => `CASE WHEN ${n}.attempts > 1 THEN
                (SELECT d.outcome FROM deliveries d JOIN endpoints de ON de.id = d.endpoint_id
                 WHERE d.notification_id = ${n}.id AND de.type = e.type AND de.value = e.value
                   AND d.outcome IN ('SUCCESS', 'PERMANENT')
                 LIMIT 1)
              END`;

function addEndpoint(work: EndpointWork, row: EndpointRow, clientId: string): void {
  if (row.final_outcome === "SUCCESS") work.deliveredEarlier++;
  else if (row.final_outcome === "PERMANENT") work.permanentEarlier++;
  else work.pending.push({ id: row.id, clientId, type: row.type, value: row.value, secret: row.secret });
}

/**
 * Settings for the pool a DeliveryStore runs on. Every statement here reaches notifications by id
 * (or the due index), so a sequential scan is never the right plan; yet with statistics from when
 * the table was small the planner chose one for a 2000-id batch (claim: hash join over a scan of
 * 40k rows, 280 ms; the status update: 480 ms), and the cost grows with the table. JIT goes off
 * with it: the disabled scans' huge estimated costs pass jit_above_cost, and compiling a claim of
 * 64 rows took 17 ms of its 24.
 */
export const deliveryStoreSettings = { enable_seqscan: "off", jit: "off" };

export class DeliveryStore {
  constructor(
    private readonly sql: Sql,
    private readonly leaseMs: number,
  ) {}

  /**
   * Claims the given notifications that are claimable now: RECEIVED, RETRY that is due, or SENDING
   * whose lease expired; never a grouped one, which only its group send delivers (group-store.ts).
   * Rows are locked in id order (no deadlock between senders) and a row another transaction holds is
   * skipped: its holder is already handling it. Returns them with their endpointWork, in one
   * statement: one round trip per batch instead of two. One without endpoints has no pending work.
   */
  async claimWithWork(ids: readonly string[]): Promise<ClaimWithWork> {
    const result: ClaimWithWork = { claimed: [], work: new Map() };
    if (ids.length === 0) return result;
    const leasedAtMs = performance.now();
    const rows = await this.sql.unsafe<
      (ClaimedRow & Partial<EndpointRow> & { endpoint_id: string | null })[]
    >(
      `WITH claimed AS (${claimByIds} RETURNING ${claimedColumns}, n.rule_ids AS rule_uuids)
       SELECT c.id, c.client_id, c.alert_id, c.severity, c.source, c.name, c.context, c.rule_ids, c.event_time,
              c.kind, c.attempts, w.endpoint_id, w.type, w.value, w.secret, w.final_outcome
       FROM claimed c
       LEFT JOIN LATERAL (
         SELECT DISTINCT ON (e.type, e.value) e.id AS endpoint_id, e.type, e.value, e.secret,
                ${finalOutcome("c")} AS final_outcome
         FROM endpoints e
         WHERE e.client_id = c.client_id AND e.rule_id = ANY(c.rule_uuids) AND e.enabled
         ORDER BY e.type, e.value, e.id
       ) w ON true
       ORDER BY c.id`,
      [plainArray(ids), this.leaseMs] as never[],
      prepared,
    );
    let last: ClaimedNotification | undefined;
    for (const row of rows) {
      if (last?.id !== String(row.id)) {
        last = toClaimed(row, leasedAtMs);
        result.claimed.push(last);
        result.work.set(last.id, { pending: [], deliveredEarlier: 0, permanentEarlier: 0 });
      }
      if (row.endpoint_id !== null)
        addEndpoint(
          result.work.get(last.id) as EndpointWork,
          { ...(row as EndpointRow), id: row.endpoint_id },
          last.clientId,
        );
    }
    return result;
  }

  /**
   * Claims up to `limit` rows whose next_attempt_at has come, skipping rows locked by others. Grouped
   * rows have none: their group's schedule and group send drive them.
   */
  async claimDue(limit: number): Promise<ClaimedNotification[]> {
    const leasedAtMs = performance.now();
    const rows = await this.sql.unsafe<ClaimedRow[]>(
      `UPDATE notifications n
       SET status = 'SENDING', attempts = n.attempts + 1, updated_at = now(),
           lease_until = now() + make_interval(secs => $2::float8 / 1000), next_attempt_at = now() + make_interval(secs => $2::float8 / 1000)
       FROM (SELECT id FROM notifications
             WHERE status IN ('RECEIVED', 'RETRY', 'SENDING') AND next_attempt_at <= now()
               AND group_key IS NULL
             ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) due
       WHERE n.id = due.id
       RETURNING ${claimedColumns}`,
      [limit, this.leaseMs] as never[],
      prepared,
    );
    return rows.map((row) => toClaimed(row, leasedAtMs));
  }

  /**
   * Extends the lease of each notification still ours (SENDING with the attempts we claimed) by the
   * lease from now, as a claim sets it; returns their ids. A row another sender claimed is left alone.
   */
  async renewLeases(leased: readonly { id: string; attempts: number }[]): Promise<Set<string>> {
    if (leased.length === 0) return new Set();
    const notifications = inIdOrder(leased, (n) => n.id);
    const rows = await this.sql.unsafe<{ id: string }[]>(
      `UPDATE notifications n
       SET lease_until = now() + make_interval(secs => $2::float8 / 1000), next_attempt_at = now() + make_interval(secs => $2::float8 / 1000)
       FROM unnest($1::bigint[], $3::int[]) AS v(id, attempts)
       WHERE n.id = v.id AND ${stillOurs}
       RETURNING n.id`,
      [
        plainArray(notifications.map((n) => n.id)),
        this.leaseMs,
        plainArray(notifications.map((n) => n.attempts)),
      ] as never[],
      prepared,
    );
    return new Set(rows.map((row) => String(row.id)));
  }

  /**
   * Enabled endpoints of each notification's matched rules, deduplicated by (type, value) so two
   * rules naming the same URL deliver once, minus those already delivered or refused for good.
   */
  async endpointWork(notifications: readonly ClaimedNotification[]): Promise<Map<string, EndpointWork>> {
    const work = new Map<string, EndpointWork>();
    const clientIds = new Map<string, string>();
    for (const n of notifications) {
      work.set(n.id, { pending: [], deliveredEarlier: 0, permanentEarlier: 0 });
      clientIds.set(n.id, n.clientId);
    }
    if (notifications.length === 0) return work;
    const rows = await this.sql.unsafe<EndpointRow[]>(
      // e.client_id is the notification's (the join says so): not fetched again per row.
      `SELECT DISTINCT ON (n.id, e.type, e.value) n.id AS notification_id, e.id, e.type, e.value, e.secret,
              ${finalOutcome("n")} AS final_outcome
       FROM notifications n
       JOIN endpoints e ON e.client_id = n.client_id AND e.rule_id = ANY(n.rule_ids) AND e.enabled
       WHERE n.id = ANY($1::bigint[])
       ORDER BY n.id, e.type, e.value, e.id`,
      [plainArray(notifications.map((n) => n.id))] as never[],
      prepared,
    );
    for (const row of rows) {
      const notificationId = String(row.notification_id);
      const entry = work.get(notificationId);
      if (entry) addEndpoint(entry, row, clientIds.get(notificationId) as string);
    }
    return work;
  }

  /**
   * Records every delivery attempt and applies the resulting statuses in one statement. A status is
   * applied only while the row is still ours (SENDING with the attempts count we claimed). Idempotent:
   * run again (a retry after a commit whose answer was lost) it changes nothing.
   */
  async recordAttempt(attempts: readonly AttemptRecord[], decided: readonly StatusUpdate[]): Promise<void> {
    const updates = inIdOrder(decided, (u) => u.notificationId);
    await this.sql.unsafe(
      `WITH recorded AS (
         INSERT INTO deliveries (notification_id, endpoint_id, channel, outcome, http_status, smtp_reply, latency_ms, error, attempt)
         SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::text[], $5::int[], $6::text[], $7::int[], $8::text[], $14::int[])
         ON CONFLICT (notification_id, endpoint_id, attempt) DO NOTHING
       )
       UPDATE notifications n
       SET status = v.status, updated_at = now(), lease_until = NULL, last_error = v.error,
           next_attempt_at = CASE WHEN v.status = 'RETRY' THEN now() + make_interval(secs => v.delay_ms / 1000) END
       FROM unnest($9::bigint[], $10::int[], $11::text[], $12::float8[], $13::text[]) AS v(id, attempts, status, delay_ms, error)
       WHERE n.id = v.id AND n.id = ANY($9::bigint[]) AND ${stillOurs}`,
      [
        plainArray(attempts.map((a) => a.notificationId)),
        plainArray(attempts.map((a) => a.endpointId)),
        textArray(attempts.map((a) => a.channel)),
        textArray(attempts.map((a) => a.outcome)),
        nullableNumberArray(attempts.map((a) => a.httpStatus)),
        textArray(attempts.map((a) => a.smtpReply)),
        nullableNumberArray(attempts.map((a) => a.latencyMs)),
        textArray(attempts.map((a) => a.error)),
        plainArray(updates.map((u) => u.notificationId)),
        plainArray(updates.map((u) => u.attempts)),
        textArray(updates.map((u) => u.decision.status)),
        plainArray(updates.map((u) => u.decision.nextAttemptDelayMs ?? 0)),
        textArray(updates.map((u) => u.decision.error ?? null)),
        plainArray(attempts.map((a) => a.attempt)),
      ] as never[],
      prepared,
    );
  }
}
