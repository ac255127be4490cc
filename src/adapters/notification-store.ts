import type { Sql } from "./postgres.ts";

/** One (client, alert) notification as the aggregator writes it. */
export interface NotificationInput {
  clientId: string;
  alertId: string;
  severity: string;
  source: string;
  name: string;
  context: Record<string, string>;
  ruleIds: readonly string[];
  eventTimeMs: number;
}

export interface PendingNotification {
  id: string;
  clientId: string;
  alertId: string;
}

/**
 * When the sender's scheduler picks a RECEIVED row up by itself, in case its notifications.ready
 * never gets processed. Normally the row is SENT long before.
 */
const safetyNetDelayMs = 60_000;

/**
 * Inserts a batch in one statement, deduplicated on (client_id, alert_id), and returns every row
 * of the batch that is not terminal yet: the new ones and those an earlier attempt inserted but
 * whose notifications.ready may never have been produced (a crash between insert and produce).
 * The existing-row half reads the statement's snapshot, so it never sees this statement's inserts.
 * `table` is another table of the same shape only for the pipeline bench's ceiling, which measures
 * this very statement on a scratch copy.
 */
export async function insertNotifications(
  sql: Sql,
  rows: readonly NotificationInput[],
  table = "notifications",
): Promise<PendingNotification[]> {
  if (rows.length === 0) return [];
  const result = await sql.unsafe<{ id: string; client_id: string; alert_id: string }[]>(
    `WITH input AS (
       SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::float8[])
         AS t(client_id, alert_id, severity, source, name, context, rule_ids, event_ms)
     ), inserted AS (
       INSERT INTO ${table} (client_id, alert_id, severity, source, name, context, rule_ids, event_time, next_attempt_at)
       SELECT client_id, alert_id, severity, source, name, context::jsonb, rule_ids::uuid[], to_timestamp(event_ms / 1000.0),
              now() + make_interval(secs => $9::float8 / 1000)
       FROM input
       ON CONFLICT (client_id, alert_id) DO NOTHING
       RETURNING id, client_id, alert_id
     )
     SELECT id, client_id, alert_id FROM inserted
     UNION ALL
     SELECT n.id, n.client_id, n.alert_id
     FROM ${table} n JOIN input i ON n.client_id = i.client_id AND n.alert_id = i.alert_id
     WHERE n.status NOT IN ('SENT', 'FAILED')`,
    [
      rows.map((r) => r.clientId),
      rows.map((r) => r.alertId),
      rows.map((r) => r.severity),
      rows.map((r) => r.source),
      rows.map((r) => r.name),
      rows.map((r) => JSON.stringify(r.context)),
      rows.map((r) => `{${r.ruleIds.join(",")}}`),
      rows.map((r) => r.eventTimeMs),
      safetyNetDelayMs,
    ] as never[],
  );
  return result.map((r) => ({ id: String(r.id), clientId: r.client_id, alertId: r.alert_id }));
}
