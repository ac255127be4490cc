import { prepared, type Sql } from "./postgres.ts";

/** One (client, scope, alert) notification as the aggregator writes it. */
export interface NotificationInput {
  clientId: string;
  /** The scope the alert came in under: an alert id is unique only within its scope. */
  scope: string;
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

/** The statement insertNotifications runs on `table`, with its parameters; exported for the plan test. */
export function dedupeInsert(
  rows: readonly NotificationInput[],
  table: string,
): { text: string; params: never[] } {
  const text = `WITH input AS (
       SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::float8[])
         AS t(client_id, scope, alert_id, severity, source, name, context, rule_ids, event_ms)
     ), inserted AS (
       INSERT INTO ${table} (client_id, scope, alert_id, severity, source, name, context, rule_ids, event_time, next_attempt_at)
       SELECT client_id, scope, alert_id, severity, source, name, context::jsonb, rule_ids::uuid[], to_timestamp(event_ms / 1000.0),
              now() + make_interval(secs => $10::float8 / 1000)
       FROM input
       ON CONFLICT (client_id, scope, alert_id) DO NOTHING
       RETURNING id, client_id, alert_id
     )
     SELECT id, client_id, alert_id FROM inserted
     UNION ALL
     SELECT n.id, n.client_id, n.alert_id
     FROM input i CROSS JOIN LATERAL (
       SELECT id, client_id, alert_id FROM ${table}
       WHERE client_id = i.client_id AND scope = i.scope AND alert_id = i.alert_id AND status NOT IN ('SENT', 'FAILED')
       LIMIT 1
     ) n`;
  const params = [
    rows.map((r) => r.clientId),
    rows.map((r) => r.scope),
    rows.map((r) => r.alertId),
    rows.map((r) => r.severity),
    rows.map((r) => r.source),
    rows.map((r) => r.name),
    rows.map((r) => JSON.stringify(r.context)),
    rows.map((r) => `{${r.ruleIds.join(",")}}`),
    rows.map((r) => r.eventTimeMs),
    safetyNetDelayMs,
  ];
  return { text, params: params as never[] };
}

/**
 * Inserts a batch in one statement, deduplicated on (client_id, scope, alert_id), and returns every row
 * of the batch that is not terminal yet: the new ones and those an earlier attempt inserted but
 * whose notifications.ready may never have been produced (a crash between insert and produce).
 * The existing-row half reads the statement's snapshot, so it never sees this statement's inserts.
 * It looks each input row up on its own (LATERAL ... LIMIT 1 is never flattened into a join): with
 * statistics from a near-empty table the planner had joined the batch to a sequential scan of the
 * whole table in a nested loop, 2000 x every row per statement (1.1 s at 6,000 rows, growing).
 * `table` is another table of the same shape only for the pipeline bench's ceiling, which measures
 * this very statement on a scratch copy.
 */
export async function insertNotifications(
  sql: Sql,
  rows: readonly NotificationInput[],
  table = "notifications",
): Promise<PendingNotification[]> {
  if (rows.length === 0) return [];
  const { text, params } = dedupeInsert(rows, table);
  const result = await sql.unsafe<{ id: string; client_id: string; alert_id: string }[]>(
    text,
    params,
    prepared,
  );
  return result.map((r) => ({ id: String(r.id), clientId: r.client_id, alertId: r.alert_id }));
}
