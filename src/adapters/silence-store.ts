/**
 * Silences in Postgres, always within one client. Every change raises the rule-updater's NOTIFY channel
 * in its transaction, so the evaluator's snapshot carries it within a second, like a rule change.
 * Times come from the caller's clock (`nowMs`), the same one that decides a silence's state.
 */
import { type Matcher, type OpenSilence, type SilenceState, silenceState } from "../core/silence.ts";
import type { Sql, TransactionSql } from "./postgres.ts";
import { rulesChangedChannel } from "./rule-source.ts";

export interface Silence {
  id: string;
  clientId: string;
  matchers: Matcher[];
  startsAtMs: number;
  endsAtMs: number;
  createdBy: string;
  comment: string;
  updatedAtMs: number;
}

/** What a caller asks for: Alertmanager's postable silence less its id. */
export type SilenceInput = Omit<Silence, "id" | "clientId" | "updatedAtMs">;

/** Expired silences stay listed this long, then go (Alertmanager's default --data.retention). */
export const silenceRetentionMs = 120 * 3600 * 1000;
/** Active and pending silences per client at most: each one is checked against the client's alerts. */
export const openSilencesPerClientMax = 500;
/** Silences one listing returns at most: all open ones, then the most recently ended. */
export const silencesListedMax = 2000;

export class SilenceLimitError extends Error {
  constructor() {
    super(`at most ${openSilencesPerClientMax} active or pending silences per client: expire some first`);
  }
}

interface SilenceRow {
  id: string;
  client_id: string;
  matchers: Matcher[];
  starts_at: Date;
  ends_at: Date;
  created_by: string;
  comment: string;
  updated_at: Date;
}

const columns = [
  "id",
  "client_id",
  "matchers",
  "starts_at",
  "ends_at",
  "created_by",
  "comment",
  "updated_at",
];

const fromRow = (row: SilenceRow): Silence => ({
  id: row.id,
  clientId: row.client_id,
  matchers: row.matchers,
  startsAtMs: row.starts_at.getTime(),
  endsAtMs: row.ends_at.getTime(),
  createdBy: row.created_by,
  comment: row.comment,
  updatedAtMs: row.updated_at.getTime(),
});

/**
 * The client a caller acts for: a client id, or null for the admin, who reaches every client's
 * silences. Another client's silence is then answered like none.
 */
export type SilenceScope = string | null;

const scopeClause = (sql: Sql | TransactionSql, scope: SilenceScope) =>
  scope === null ? sql`` : sql`AND client_id = ${scope}`;

export async function findSilence(sql: Sql, scope: SilenceScope, id: string): Promise<Silence | undefined> {
  const [row] = await sql<SilenceRow[]>`
    SELECT ${sql(columns)} FROM silences WHERE id = ${id} ${scopeClause(sql, scope)}`;
  return row && fromRow(row);
}

/**
 * One page of silences by id (the rule service's API), within the retention window: those of `scope`,
 * optionally of one client and in one state at `nowMs`.
 */
export async function listSilencePage(
  sql: Sql,
  scope: SilenceScope,
  filter: { clientId?: string; state?: SilenceState },
  afterId: string | null,
  limit: number,
  nowMs: number,
): Promise<Silence[]> {
  const now = new Date(nowMs);
  const state = {
    active: sql`AND starts_at <= ${now} AND ends_at >= ${now}`,
    pending: sql`AND starts_at > ${now}`,
    expired: sql`AND ends_at < ${now}`,
  };
  const rows = await sql<SilenceRow[]>`
    SELECT ${sql(columns)} FROM silences
    WHERE ends_at >= ${new Date(nowMs - silenceRetentionMs)} ${scopeClause(sql, scope)}
      ${filter.clientId === undefined ? sql`` : sql`AND client_id = ${filter.clientId}`}
      ${filter.state === undefined ? sql`` : state[filter.state]}
      ${afterId === null ? sql`` : sql`AND id > ${afterId}`}
    ORDER BY id LIMIT ${limit}`;
  return rows.map(fromRow);
}

/** The client's silences that have not ended before the retention window, open ones first. */
export async function listSilences(sql: Sql, clientId: string, nowMs: number): Promise<Silence[]> {
  const rows = await sql<SilenceRow[]>`
    SELECT ${sql(columns)} FROM silences
    WHERE client_id = ${clientId} AND ends_at >= ${new Date(nowMs - silenceRetentionMs)}
    ORDER BY ends_at DESC LIMIT ${silencesListedMax}`;
  return rows.map(fromRow);
}

/**
 * Alertmanager's Silences.Set. Without `id`: a new silence (starting no earlier than now). With `id`:
 * updated in place when that changes no history (same matchers; an active one keeps its start and does
 * not end in the past; a pending one does not start in the past), otherwise the old one is expired
 * (unless it already is) and a new one made. Undefined when `id` is not one of the client's silences.
 */
export async function setSilence(
  sql: Sql,
  clientId: string,
  id: string | undefined,
  input: SilenceInput,
  nowMs: number,
): Promise<string | undefined> {
  return (await sql.begin(async (tx) => {
    // One writer per client at a time, so the open-silence count cannot be raced past its bound.
    const [client] = await tx`SELECT 1 FROM clients WHERE id = ${clientId} FOR NO KEY UPDATE`;
    if (!client) return undefined;
    const now = new Date(nowMs);
    if (id !== undefined) {
      const [row] = await tx<SilenceRow[]>`
        SELECT ${tx(columns)} FROM silences WHERE id = ${id} AND client_id = ${clientId} FOR UPDATE`;
      if (!row) return undefined;
      const previous = fromRow(row);
      if (canUpdate(previous, input, nowMs)) {
        await tx`
          UPDATE silences SET starts_at = ${new Date(input.startsAtMs)}, ends_at = ${new Date(input.endsAtMs)},
            created_by = ${input.createdBy}, comment = ${input.comment}, updated_at = ${now}
          WHERE id = ${id}`;
        await announce(tx);
        return id;
      }
      if (silenceState(previous.startsAtMs, previous.endsAtMs, nowMs) !== "expired")
        await expire(tx, previous, now);
    }
    await tx`DELETE FROM silences WHERE client_id = ${clientId} AND ends_at < ${new Date(nowMs - silenceRetentionMs)}`;
    const [open] = await tx<{ count: number }[]>`
      SELECT count(*)::int AS count FROM silences WHERE client_id = ${clientId} AND ends_at >= ${now}`;
    if ((open?.count ?? 0) >= openSilencesPerClientMax) throw new SilenceLimitError();
    const [created] = await tx<{ id: string }[]>`
      INSERT INTO silences (client_id, matchers, starts_at, ends_at, created_by, comment, created_at, updated_at)
      VALUES (${clientId}, ${tx.json(input.matchers as unknown as Parameters<typeof tx.json>[0])},
        ${new Date(Math.max(input.startsAtMs, nowMs))}, ${new Date(input.endsAtMs)}, ${input.createdBy},
        ${input.comment}, ${now}, ${now})
      RETURNING id`;
    await announce(tx);
    return created?.id;
  })) as string | undefined;
}

/**
 * Alertmanager's Silences.Expire: an active silence ends now, a pending one starts and ends now.
 * "not-found" for another client's silence as for none; an expired one stays as it is.
 */
export async function expireSilence(
  sql: Sql,
  scope: SilenceScope,
  id: string,
  nowMs: number,
): Promise<"expired" | "already-expired" | "not-found"> {
  return (await sql.begin(async (tx) => {
    const [row] = await tx<SilenceRow[]>`
      SELECT ${tx(columns)} FROM silences WHERE id = ${id} ${scopeClause(tx, scope)} FOR UPDATE`;
    if (!row) return "not-found";
    const silence = fromRow(row);
    if (silenceState(silence.startsAtMs, silence.endsAtMs, nowMs) === "expired") return "already-expired";
    await expire(tx, silence, new Date(nowMs));
    return "expired";
  })) as "expired" | "already-expired" | "not-found";
}

async function expire(tx: TransactionSql, silence: Silence, now: Date): Promise<void> {
  await tx`
    UPDATE silences SET ends_at = ${now}, updated_at = ${now},
      starts_at = CASE WHEN starts_at > ${now} THEN ${now} ELSE starts_at END
    WHERE id = ${silence.id}`;
  await announce(tx);
}

/** Wakes the rule-updater, which rebuilds the snapshot the evaluator applies silences from. */
async function announce(tx: TransactionSql): Promise<void> {
  await tx`SELECT pg_notify(${rulesChangedChannel}, '')`;
}

function canUpdate(previous: Silence, next: SilenceInput, nowMs: number): boolean {
  const sameMatchers =
    previous.matchers.length === next.matchers.length &&
    previous.matchers.every((matcher, index) => {
      const other = next.matchers[index] as Matcher;
      return (
        matcher.name === other.name &&
        matcher.value === other.value &&
        matcher.isRegex === other.isRegex &&
        matcher.isEqual === other.isEqual
      );
    });
  if (!sameMatchers) return false;
  switch (silenceState(previous.startsAtMs, previous.endsAtMs, nowMs)) {
    case "active":
      return next.startsAtMs === previous.startsAtMs && next.endsAtMs >= nowMs;
    case "pending":
      return next.startsAtMs >= nowMs;
    case "expired":
      return false;
  }
}

/**
 * Every silence not yet ended, for the rules snapshot: the evaluator decides active or pending itself,
 * per alert, so a silence starts and ends on time without a rebuild.
 */
export async function loadOpenSilences(sql: Sql | TransactionSql): Promise<OpenSilence[]> {
  const rows = await sql<
    { id: string; client_id: string; matchers: Matcher[]; starts_at: Date; ends_at: Date }[]
  >`
    SELECT id, client_id, matchers, starts_at, ends_at FROM silences WHERE ends_at >= now() ORDER BY id`;
  return rows.map((row) => ({
    id: row.id,
    clientId: row.client_id,
    startsAtMs: row.starts_at.getTime(),
    endsAtMs: row.ends_at.getTime(),
    matchers: row.matchers,
  }));
}
