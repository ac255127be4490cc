import type { GroupSettings } from "../core/grouping.ts";
import {
  type AlertState,
  type AlertStateName,
  applySubmission,
  defaultPolicy,
  type LifecyclePolicy,
  type NotificationKind,
  type SweepSettings,
  sweepState,
} from "../core/lifecycle.ts";
import { prepared, type Sql, type TransactionSql } from "./postgres.ts";

/** A uuid[] parameter as its text form, `{a,b}` (the ids are validated UUIDs). */
const uuidArray = (ids: readonly string[]) => `{${ids.join(",")}}`;

/** One (client, scope, alert, route) submission as the aggregator writes it. */
export interface NotificationInput {
  clientId: string;
  /** The scope the alert came in under: an alert id is unique only within its scope. */
  scope: string;
  alertId: string;
  /**
   * Which of the client's routes (src/core/grouping.ts, deliveryRoute) the matched rules are: "" for
   * rules without grouping. Each route is a notification (and a lifecycle) of its own.
   */
  route: string;
  severity: string;
  source: string;
  name: string;
  context: Record<string, string>;
  ruleIds: readonly string[];
  eventTimeMs: number;
  /**
   * The client's silence that matched (the evaluator decides): the row is then SILENCED, terminal,
   * never sent. An episode's later rows (resolved, reminders) stay silent with its firing.
   */
  silencedBy?: string;
  /**
   * The client's rule whose mute window held when the evaluator processed the submission: this row is
   * SILENCED like a silenced one, but an episode's later rows are not (src/core/lifecycle.ts decides
   * what they notify).
   */
  mutedByRule?: string;
  /**
   * Alertmanager alerts only (src/core/lifecycle.ts): firing or resolved, their endsAt and the
   * rules' policy. Without it the alert has no lifecycle: one notification per alert id (episode 0,
   * kind firing).
   */
  lifecycle?: { status: AlertStateName; endsAtMs: number | null; policy?: LifecyclePolicy };
  /**
   * The row's group when its rules group (src/core/grouping.ts): the sender then sends it with the
   * group's other due rows, and no notifications.ready announces it. Absent: one message per alert.
   */
  group?: { key: string; labels: Record<string, string>; settings: GroupSettings };
}

/** A notification row to insert: the submission, and which episode and kind of its alert it is. */
interface NotificationRow extends NotificationInput {
  episode: number;
  kind: NotificationKind;
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
  delayMs = safetyNetDelayMs,
): { text: string; params: never[] } {
  const own = "(i.kind = 'firing' OR i.silence <> '')";
  const inherited = (column: string) => `(
             SELECT f.${column} FROM ${table} f
             WHERE f.client_id = i.client_id AND f.scope = i.scope AND f.alert_id = i.alert_id
               AND f.route = i.route AND f.episode = i.episode AND f.kind = 'firing' AND f.muted_by_rule IS NULL)`;
  const text = `WITH input AS (
       SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::float8[], $10::int[], $11::text[], $13::text[], $14::text[], $15::text[], $16::float8[], $17::text[])
         AS t(client_id, scope, alert_id, severity, source, name, context, rule_ids, event_ms, episode, kind, silence, muted, group_key, group_wait_ms, route)
     ), marked AS (
       -- Later rows of an episode (resolved, reminders) stay silent with its firing row's silence,
       -- unless that row was muted too: the episode was not notified, and the first submission after
       -- both ended notifies it. A mute holds only for its own row, as the lifecycle judges each
       -- submission's. A grouped row goes out with its group's next window; a new group's first is
       -- group_wait away (openGroups creates it after this statement, in the same transaction).
       SELECT i.*,
              CASE WHEN ${own} THEN nullif(i.silence, '')::uuid ELSE ${inherited("silenced_by")} END AS silenced_by,
              nullif(i.muted, '')::uuid AS muted_by_rule,
              CASE WHEN i.group_key IS NOT NULL THEN coalesce(
                (SELECT greatest(g.next_due_at, now()) FROM notification_groups g WHERE g.group_key = i.group_key),
                now() + make_interval(secs => i.group_wait_ms / 1000))
              END AS group_due_at
       FROM input i
     ), inserted AS (
       INSERT INTO ${table} (client_id, scope, alert_id, route, severity, source, name, context, rule_ids, event_time, next_attempt_at, episode, kind, status, silenced_by, muted_by_rule, group_key, group_due_at)
       SELECT client_id, scope, alert_id, route, severity, source, name, context::jsonb, rule_ids::uuid[], to_timestamp(event_ms / 1000.0),
              -- A group's schedule (notification_groups) drives its rows, not a safety net per row.
              CASE WHEN silenced_by IS NULL AND muted_by_rule IS NULL AND group_key IS NULL THEN now() + make_interval(secs => $12::float8 / 1000) END, episode, kind,
              CASE WHEN silenced_by IS NULL AND muted_by_rule IS NULL THEN 'RECEIVED' ELSE 'SILENCED' END, silenced_by, muted_by_rule,
              -- A silenced row is never sent: it joins no group.
              CASE WHEN silenced_by IS NULL AND muted_by_rule IS NULL THEN group_key END,
              CASE WHEN silenced_by IS NULL AND muted_by_rule IS NULL THEN group_due_at END
       FROM marked
       ON CONFLICT (client_id, scope, alert_id, route, episode, kind) DO NOTHING
       RETURNING id, client_id, alert_id, status, group_key
     )
     SELECT id, client_id, alert_id FROM inserted WHERE status <> 'SILENCED' AND group_key IS NULL
     UNION ALL
     SELECT n.id, n.client_id, n.alert_id
     FROM input i CROSS JOIN LATERAL (
       SELECT id, client_id, alert_id FROM ${table}
       WHERE client_id = i.client_id AND scope = i.scope AND alert_id = i.alert_id AND route = i.route
         AND episode = i.episode AND kind = i.kind AND status NOT IN ('SENT', 'FAILED', 'SILENCED')
         AND group_key IS NULL
       LIMIT 1
     ) n`;
  const withKind = rows.map((r) => ({ episode: 0, kind: "firing", ...r }));
  const params = [
    rows.map((r) => r.clientId),
    rows.map((r) => r.scope),
    rows.map((r) => r.alertId),
    rows.map((r) => r.severity),
    rows.map((r) => r.source),
    rows.map((r) => r.name),
    rows.map((r) => JSON.stringify(r.context)),
    rows.map((r) => uuidArray(r.ruleIds)),
    rows.map((r) => r.eventTimeMs),
    withKind.map((r) => r.episode),
    withKind.map((r) => r.kind),
    delayMs,
    rows.map((r) => r.silencedBy ?? ""),
    rows.map((r) => r.mutedByRule ?? ""),
    rows.map((r) => r.group?.key ?? null),
    rows.map((r) => r.group?.settings.groupWaitMs ?? null),
    rows.map((r) => r.route),
  ];
  return { text, params: params as never[] };
}

/**
 * Inserts a batch deduplicated on (client_id, scope, alert_id, route, episode, kind), and returns every row
 * of the batch that is not terminal yet (a silenced one is terminal from the start): the new ones and those an earlier attempt inserted but
 * whose notifications.ready may never have been produced (a crash between insert and produce).
 * The existing-row half reads the statement's snapshot, so it never sees this statement's inserts.
 * It looks each input row up on its own (LATERAL ... LIMIT 1 is never flattened into a join): with
 * statistics from a near-empty table the planner had joined the batch to a sequential scan of the
 * whole table in a nested loop, 2000 x every row per statement (1.1 s at 6,000 rows, growing).
 * `table` is another table of the same shape only for the pipeline bench's ceiling, which measures
 * this very statement on a scratch copy.
 *
 * Alerts with a lifecycle are first run through their states (applyLifecycle), in one transaction
 * with the insert, so a state and its notification rows are written together or not at all.
 */
export async function insertNotifications(
  sql: Sql,
  rows: readonly NotificationInput[],
  table = "notifications",
): Promise<PendingNotification[]> {
  if (rows.length === 0) return [];
  if (rows.every((row) => row.lifecycle === undefined && row.group === undefined))
    return insertRows(sql, rows, table);
  return sql.begin(async (tx) => {
    const plain = rows.filter((row) => row.lifecycle === undefined);
    const transitions = await applyLifecycle(
      tx,
      rows.filter((row) => row.lifecycle !== undefined),
    );
    const written = [...plain, ...transitions];
    const pending = await insertRows(tx, written, table);
    await openGroups(tx, written);
    return pending;
  });
}

/**
 * Creates the groups of `rows` that do not exist yet (first window: now + group_wait) and marks the
 * others as having rows waiting. Written after the rows, in their transaction, so the group rows stay
 * locked only until the commit: a sender that takes a group's waiting rows holds the group row
 * locked, so either it sees these rows or the mark is set again after it (docs/design/alert-model.md,
 * "Grouping"). Keys in sorted order, as the sender and the sweep lock them: no deadlock.
 */
async function openGroups(tx: TransactionSql, rows: readonly NotificationInput[]): Promise<void> {
  const groups = new Map<string, NonNullable<NotificationInput["group"]> & { clientId: string }>();
  for (const row of rows) {
    if (row.group !== undefined && !row.silencedBy && !row.mutedByRule)
      groups.set(row.group.key, { ...row.group, clientId: row.clientId });
  }
  if (groups.size === 0) return;
  const sorted = [...groups.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  await tx.unsafe(
    `INSERT INTO notification_groups (group_key, client_id, labels, group_interval_ms, group_alerts_max, next_due_at)
     SELECT key, client_id, labels::jsonb, interval_ms, alerts_max, now() + make_interval(secs => wait_ms / 1000)
     FROM unnest($1::text[], $2::uuid[], $3::text[], $4::float8[], $5::int[], $6::float8[])
       WITH ORDINALITY AS t(key, client_id, labels, interval_ms, alerts_max, wait_ms, n)
     ORDER BY n
     ON CONFLICT (group_key) DO UPDATE SET has_pending = true,
       -- An idle group whose interval has passed starts over: its new alerts wait group_wait, like a
       -- new group's, instead of the first going out alone and the rest a whole interval later.
       next_due_at = CASE WHEN NOT notification_groups.has_pending AND notification_groups.next_due_at < now()
         THEN EXCLUDED.next_due_at ELSE notification_groups.next_due_at END`,
    [
      sorted.map((g) => g.key),
      sorted.map((g) => g.clientId),
      sorted.map((g) => JSON.stringify(g.labels)),
      sorted.map((g) => g.settings.groupIntervalMs),
      sorted.map((g) => g.settings.groupAlertsMax),
      sorted.map((g) => g.settings.groupWaitMs),
    ] as never[],
  );
}

async function insertRows(
  sql: Sql | TransactionSql,
  rows: readonly NotificationInput[],
  table: string,
  delayMs = safetyNetDelayMs,
): Promise<PendingNotification[]> {
  if (rows.length === 0) return [];
  const { text, params } = dedupeInsert(rows, table, delayMs);
  const result = await sql.unsafe<{ id: string; client_id: string; alert_id: string }[]>(
    text,
    params,
    prepared,
  );
  return result.map((r) => ({ id: String(r.id), clientId: r.client_id, alertId: r.alert_id }));
}

interface StateRow {
  client_id: string;
  scope: string;
  alert_key: string;
  route: string;
  episode: number;
  state: AlertStateName;
  episode_started_ms: number;
  last_event_ms: number;
  last_seen_ms: number;
  ends_at_ms: number | null;
  last_notified_ms: number;
  repeat_count: number;
  send_resolved: boolean;
  repeat_interval_ms: string | null;
  notified: boolean;
  told_rule_ids: string[] | null;
  matched_rule_ids: string[] | null;
  silenced: boolean;
}

const stateColumns = `client_id, scope, alert_key, route, episode, state,
  extract(epoch FROM episode_started_at) * 1000 AS episode_started_ms,
  extract(epoch FROM last_event_at) * 1000 AS last_event_ms,
  extract(epoch FROM last_seen_at) * 1000 AS last_seen_ms,
  extract(epoch FROM ends_at) * 1000 AS ends_at_ms,
  extract(epoch FROM last_notified_at) * 1000 AS last_notified_ms,
  repeat_count, send_resolved, repeat_interval_ms, notified, array_to_json(told_rule_ids) AS told_rule_ids,
  array_to_json(matched_rule_ids) AS matched_rule_ids, silenced,
  (extract(epoch FROM now()) * 1000)::float8 AS now_ms`;

function stateOf(row: StateRow): AlertState {
  return {
    episode: row.episode,
    state: row.state,
    episodeStartedMs: Number(row.episode_started_ms),
    lastEventMs: Number(row.last_event_ms),
    lastSeenMs: Number(row.last_seen_ms),
    endsAtMs: row.ends_at_ms === null ? null : Number(row.ends_at_ms),
    lastNotifiedMs: Number(row.last_notified_ms),
    repeatCount: row.repeat_count,
    policy: {
      sendResolved: row.send_resolved,
      repeatIntervalMs: row.repeat_interval_ms === null ? null : Number(row.repeat_interval_ms),
    },
    notified: row.notified,
    toldRuleIds: row.told_rule_ids,
    matchedRuleIds: row.matched_rule_ids,
    silenced: row.silenced,
  };
}

/** The two-key advisory lock space of the lifecycle's buckets (apart from the one-key locks). */
const lifecycleLockSpace = 7_414;
const lifecycleLockBuckets = 1024;

const stateKey = (clientId: string, scope: string, alertKey: string, route: string) =>
  `${clientId}\u0000${scope}\u0000${alertKey}\u0000${route}`;

/**
 * Applies each submission, in batch order, to its alert's state (locked for the transaction), stores
 * the states that changed, and returns the notification rows the transitions call for.
 */
async function applyLifecycle(
  tx: TransactionSql,
  rows: readonly NotificationInput[],
): Promise<NotificationRow[]> {
  if (rows.length === 0) return [];
  // FOR UPDATE locks only states that exist: two transactions both finding none would each decide on
  // its own and the later upsert overwrite the earlier's episode. A transaction lock per bucket of
  // keys (in one order, so no deadlock; keys sharing a bucket only wait for each other) serialises
  // them, existing or not. Buckets bound the locks one transaction holds: one per key would fill
  // Postgres's lock table (64 x max_connections slots) with a batch of a few thousand alerts.
  await tx.unsafe(
    `SELECT pg_advisory_xact_lock(${lifecycleLockSpace}, k) FROM (
       SELECT DISTINCT (hashtextextended(client_id::text || ' ' || scope || ' ' || alert_key, 0) & ${lifecycleLockBuckets - 1})::int AS k
       FROM unnest($1::uuid[], $2::text[], $3::text[]) AS t(client_id, scope, alert_key)
       ORDER BY k
     ) keys`,
    [rows.map((r) => r.clientId), rows.map((r) => r.scope), rows.map((r) => r.alertId)] as never[],
  );
  const locked = await tx.unsafe<(StateRow & { now_ms: number })[]>(
    `SELECT ${stateColumns} FROM alert_states
     WHERE (client_id, scope, alert_key, route) IN (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]))
     ORDER BY client_id, scope, alert_key, route
     FOR UPDATE`,
    [
      rows.map((r) => r.clientId),
      rows.map((r) => r.scope),
      rows.map((r) => r.alertId),
      rows.map((r) => r.route),
    ] as never[],
  );
  const [{ now_ms: nowMs } = { now_ms: Date.now() }] = await tx.unsafe<{ now_ms: number }[]>(
    "SELECT (extract(epoch FROM now()) * 1000)::float8 AS now_ms",
  );
  const states = new Map(
    locked.map((row) => [stateKey(row.client_id, row.scope, row.alert_key, row.route), stateOf(row)]),
  );
  const changed = new Map<string, { row: NotificationInput; state: AlertState }>();
  const notifications: NotificationRow[] = [];
  const firings = new Map<string, NotificationRow>();
  for (const row of rows) {
    const key = stateKey(row.clientId, row.scope, row.alertId, row.route);
    const lifecycle = row.lifecycle as NonNullable<NotificationInput["lifecycle"]>;
    const { state, notify } = applySubmission(states.get(key), {
      status: lifecycle.status,
      eventMs: row.eventTimeMs,
      endsAtMs: lifecycle.endsAtMs,
      nowMs: Number(nowMs),
      policy: lifecycle.policy ?? defaultPolicy,
      muted: Boolean(row.mutedByRule),
      silenced: Boolean(row.silencedBy),
      ruleIds: row.ruleIds,
    });
    if (state === undefined || state === states.get(key)) continue;
    states.set(key, state);
    changed.set(key, { row, state });
    if (!notify) continue;
    const notification = {
      ...row,
      episode: notify.episode,
      kind: notify.kind,
      ruleIds: notify.ruleIds ?? row.ruleIds,
    };
    if (notify.kind === "firing") firings.set(key, notification);
    else if (!row.silencedBy) {
      // The insert copies a firing row's silence from the table, which cannot see its own batch.
      const firing = firings.get(key);
      if (firing?.episode === notify.episode && !firing.mutedByRule)
        notification.silencedBy = firing.silencedBy;
    }
    notifications.push(notification);
  }
  await storeStates(
    tx,
    [...changed.values()].map(({ row, state }) => ({ ...row, state })),
  );
  return notifications;
}

async function storeStates(
  tx: TransactionSql,
  rows: readonly { clientId: string; scope: string; alertId: string; route: string; state: AlertState }[],
): Promise<void> {
  if (rows.length === 0) return;
  await tx.unsafe(
    `INSERT INTO alert_states (client_id, scope, alert_key, route, episode, state, episode_started_at, last_event_at,
                               last_seen_at, ends_at, last_notified_at, repeat_count, send_resolved, repeat_interval_ms,
                               notified, told_rule_ids, matched_rule_ids, silenced)
     SELECT client_id, scope, alert_key, route, episode, state, to_timestamp(started / 1000.0), to_timestamp(last_event / 1000.0),
            to_timestamp(last_seen / 1000.0), to_timestamp(ends_at / 1000.0), to_timestamp(last_notified / 1000.0), repeat_count,
            send_resolved::boolean, repeat_interval_ms::bigint, notified::boolean, told::uuid[], matched::uuid[], silenced::boolean
     FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::text[], $6::float8[], $7::float8[], $8::float8[],
                 $9::float8[], $10::float8[], $11::int[], $12::text[], $13::float8[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[])
       AS t(client_id, scope, alert_key, episode, state, started, last_event, last_seen, ends_at, last_notified, repeat_count,
            send_resolved, repeat_interval_ms, notified, route, told, matched, silenced)
     ON CONFLICT (client_id, scope, alert_key, route) DO UPDATE SET
       episode = excluded.episode, state = excluded.state, episode_started_at = excluded.episode_started_at,
       last_event_at = excluded.last_event_at, last_seen_at = excluded.last_seen_at, ends_at = excluded.ends_at,
       last_notified_at = excluded.last_notified_at, repeat_count = excluded.repeat_count,
       send_resolved = excluded.send_resolved, repeat_interval_ms = excluded.repeat_interval_ms,
       notified = excluded.notified, told_rule_ids = excluded.told_rule_ids,
       matched_rule_ids = excluded.matched_rule_ids, silenced = excluded.silenced`,
    [
      rows.map((r) => r.clientId),
      rows.map((r) => r.scope),
      rows.map((r) => r.alertId),
      rows.map((r) => r.state.episode),
      rows.map((r) => r.state.state),
      rows.map((r) => r.state.episodeStartedMs),
      rows.map((r) => r.state.lastEventMs),
      rows.map((r) => r.state.lastSeenMs),
      rows.map((r) => r.state.endsAtMs),
      rows.map((r) => r.state.lastNotifiedMs),
      rows.map((r) => r.state.repeatCount),
      rows.map((r) => String(r.state.policy.sendResolved)),
      rows.map((r) => r.state.policy.repeatIntervalMs),
      rows.map((r) => String(r.state.notified)),
      rows.map((r) => r.route),
      rows.map((r) => (r.state.toldRuleIds === null ? null : uuidArray(r.state.toldRuleIds))),
      rows.map((r) => (r.state.matchedRuleIds === null ? null : uuidArray(r.state.matchedRuleIds))),
      rows.map((r) => String(r.state.silenced)),
    ] as never[],
  );
}

/**
 * One sweep step: resolves firing states whose ends-at or resolve timeout passed and reminds of those
 * whose repeat interval passed, at most `limit` states, skipping those another transaction holds. The
 * rows are copies of the episode's first unmuted notification (its firing row, or the reminder that
 * notified an episode which opened muted) naming the rules told of the episode, reminders only
 * those its latest submission named (src/core/lifecycle.ts, when known), due at once for the
 * sender's scheduler (no
 * notifications.ready is produced for them), or SILENCED like it: a silenced episode stays silent.
 * Returns how many states were due (a full `limit`: more may be) and how many notifications it wrote.
 */
export async function sweepAlertStates(
  sql: Sql,
  settings: SweepSettings,
  limit: number,
): Promise<{ due: number; written: number }> {
  return sql.begin(async (tx) => {
    const due = await tx.unsafe<(StateRow & { now_ms: number; sibling_fires_until_ms: number | null })[]>(
      `SELECT ${stateColumns},
              -- firesUntilMs (src/core/lifecycle.ts) of the alert's other routes.
              (SELECT extract(epoch FROM max(coalesce(o.ends_at,
                        o.last_seen_at + make_interval(secs => $1::float8 / 1000)))) * 1000
               FROM alert_states o
               WHERE o.client_id = s.client_id AND o.scope = s.scope AND o.alert_key = s.alert_key
                 AND o.route <> s.route) AS sibling_fires_until_ms
       FROM alert_states s
       WHERE state = 'firing'
         AND (ends_at <= now() OR last_seen_at <= now() - make_interval(secs => $1::float8 / 1000)
              -- An episode not notified gets no reminder: left out, it cannot fill the limit.
              OR (notified AND last_notified_at <= now() - make_interval(secs => coalesce(repeat_interval_ms, $2::float8) / 1000)))
       ORDER BY last_seen_at
       LIMIT $3
       FOR UPDATE SKIP LOCKED`,
      [settings.resolveTimeoutMs, settings.repeatIntervalMs, limit] as never[],
    );
    const changed: { clientId: string; scope: string; alertId: string; route: string; state: AlertState }[] =
      [];
    const kinds: {
      clientId: string;
      scope: string;
      alertId: string;
      route: string;
      episode: number;
      kind: string;
      ruleIds?: readonly string[];
    }[] = [];
    for (const row of due) {
      const current = stateOf(row);
      const siblingFiresUntilMs =
        row.sibling_fires_until_ms === null ? undefined : Number(row.sibling_fires_until_ms);
      const { state, notify } = sweepState(current, Number(row.now_ms), settings, siblingFiresUntilMs);
      // A resolution without a notification (the policy skips them) is still stored.
      if (state === undefined || state === current) continue;
      const key = { clientId: row.client_id, scope: row.scope, alertId: row.alert_key, route: row.route };
      changed.push({ ...key, state });
      if (notify) kinds.push({ ...key, ...notify });
    }
    await storeStates(tx, changed);
    if (kinds.length === 0) return { due: due.length, written: 0 };
    // A grouped episode's rows join its group's next window, marked as waiting (in key order, the
    // order openGroups locks groups in).
    const [{ count } = { count: 0 }] = await tx.unsafe<{ count: number }[]>(
      `WITH inserted AS (
         INSERT INTO notifications (client_id, scope, alert_id, route, severity, source, name, context, rule_ids, event_time,
                                    next_attempt_at, episode, kind, status, silenced_by, muted_by_rule, group_key, group_due_at)
         SELECT f.client_id, f.scope, f.alert_id, f.route, f.severity, f.source, f.name, f.context,
                coalesce(t.rule_ids::uuid[], f.rule_ids), f.event_time,
                CASE WHEN f.silenced_by IS NULL AND f.group_key IS NULL THEN now() END, f.episode, t.kind,
                CASE WHEN f.silenced_by IS NULL THEN 'RECEIVED' ELSE 'SILENCED' END, f.silenced_by, NULL::uuid,
                f.group_key, CASE WHEN f.group_key IS NOT NULL THEN greatest(g.next_due_at, now()) END
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[])
           AS t(client_id, scope, alert_id, episode, kind, route, rule_ids)
         CROSS JOIN LATERAL (
           SELECT * FROM notifications f
           WHERE f.client_id = t.client_id AND f.scope = t.scope AND f.alert_id = t.alert_id
             AND f.route = t.route AND f.episode = t.episode AND f.muted_by_rule IS NULL
           ORDER BY f.id
           LIMIT 1
         ) f
         LEFT JOIN notification_groups g ON g.group_key = f.group_key
         ON CONFLICT (client_id, scope, alert_id, route, episode, kind) DO NOTHING
         RETURNING id, group_key
       ), waiting AS (
         UPDATE notification_groups g SET has_pending = true
         FROM (SELECT group_key FROM notification_groups
               WHERE group_key IN (SELECT group_key FROM inserted WHERE group_key IS NOT NULL)
               ORDER BY group_key FOR UPDATE) l
         WHERE g.group_key = l.group_key
       )
       SELECT count(*)::int AS count FROM inserted`,
      [
        kinds.map((k) => k.clientId),
        kinds.map((k) => k.scope),
        kinds.map((k) => k.alertId),
        kinds.map((k) => k.episode),
        kinds.map((k) => k.kind),
        kinds.map((k) => k.route),
        kinds.map((k) => (k.ruleIds === undefined ? null : uuidArray(k.ruleIds))),
      ] as never[],
    );
    return { due: due.length, written: count };
  });
}
