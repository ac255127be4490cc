/**
 * Rows and snapshots for the rule-updater tests. Every test makes its own uniquely named clients and
 * only ever reads, changes or deletes rules of those clients: the rules table is shared with the
 * file's other tests, so snapshots are compared with the database restricted to a test's own clients.
 */
import { afterAll } from "bun:test";
import { uniqueName } from "../../harness/names.ts";
import type { TestSchema } from "../../harness/postgres.ts";
import type { Sql } from "../../src/adapters/postgres.ts";
import { connectRedis, type RedisClient } from "../../src/adapters/redis.ts";
import { loadRulesSnapshot, rulesChangedChannel } from "../../src/adapters/rule-source.ts";
import {
  readSnapshotBytes,
  readSnapshotVersion,
  type SnapshotKeys,
  snapshotKeys,
} from "../../src/adapters/snapshot-store.ts";
import type { Grant, Rule } from "../../src/core/matching/types.ts";
import { parseSeverityPattern } from "../../src/core/severity.ts";
import { decodeSnapshot, snapshotGrants, snapshotRules } from "../../src/core/snapshot.ts";

/**
 * A test file's Postgres pools, in the file's schema: `sql` for reads, as the stage's own pool does,
 * and `changes` for the file's own rows. synchronous_commit=off only skips waiting for the WAL flush
 * (commits are visible to every other session at once), so thousands of changes stay fast on a busy
 * disk.
 */
export function usePostgresFixture(
  db: TestSchema,
  connectionsMax: number,
): {
  sql: Sql;
  changes: Sql;
  ownClient(): Promise<string>;
  ownSharedScope(clientIds: readonly string[]): Promise<{ id: string; name: string }>;
} {
  const sql = db.connect({ connectionsMax });
  const changes = db.connect({ connectionsMax: 4, settings: { synchronous_commit: "off" } });
  return {
    sql,
    changes,
    ownClient: () => createClient(changes),
    ownSharedScope: (clientIds) => createSharedScope(changes, clientIds),
  };
}

/**
 * A test file's Redis connection and the snapshot keys it owns (named after `prefix`), deleted after
 * the file's tests before the connection is closed.
 */
export function useRedisFixture(prefix: string): {
  redis: RedisClient;
  ownKeys(name: string): SnapshotKeys;
} {
  const redis = connectRedis();
  const ownedKeys: string[] = [];
  afterAll(async () => {
    if (ownedKeys.length > 0) await redis.del(...ownedKeys);
    redis.disconnect();
  });
  return {
    redis,
    ownKeys(name) {
      const keys = snapshotKeys(`${uniqueName(`${prefix}-${name}`)}:rules:`);
      ownedKeys.push(keys.snapshot, keys.version);
      return keys;
    },
  };
}

export async function createClient(sql: Sql): Promise<string> {
  const [row] = await sql<{ id: string }[]>`
    INSERT INTO clients (name) VALUES (${uniqueName("test-rule-updater-client")}) RETURNING id`;
  return (row as { id: string }).id;
}

export async function insertRule(
  sql: Sql,
  clientId: string,
  fields: { severity?: string; source?: string; name?: string; enabled?: boolean } = {},
): Promise<string> {
  const [row] = await sql<{ id: string }[]>`
    INSERT INTO rules (client_id, severity, source, name, enabled)
    VALUES (${clientId}, ${fields.severity ?? "HIGH"}, ${fields.source ?? `src-${crypto.randomUUID()}`},
            ${fields.name ?? "cpu"}, ${fields.enabled ?? true})
    RETURNING id`;
  return (row as { id: string }).id;
}

/** A shared scope with a unique name, granted to `clientIds`; the rule-updater is told as the API would. */
export async function createSharedScope(
  sql: Sql,
  clientIds: readonly string[],
): Promise<{ id: string; name: string }> {
  const [scope] = await sql<{ id: string; name: string }[]>`
    INSERT INTO shared_scopes (name) VALUES (${uniqueName("test-scope")}) RETURNING id, name`;
  const { id, name } = scope as { id: string; name: string };
  for (const clientId of clientIds) {
    await sql`INSERT INTO scope_grants (scope_id, client_id) VALUES (${id}, ${clientId})`;
  }
  await sql`SELECT pg_notify(${rulesChangedChannel}, '')`;
  return { id, name };
}

/** Canonical, sorted text of grants. */
export function describeGrants(grants: readonly Grant[]): string[] {
  return grants.map((g) => `${g.scope} ${g.clientId}`).sort();
}

/** The stored snapshot's grants to `clientIds` (empty when there is no snapshot). */
export async function storedGrantsOf(
  redis: RedisClient,
  keys: SnapshotKeys,
  clientIds: readonly string[],
): Promise<string[]> {
  const bytes = await readSnapshotBytes(redis, keys);
  if (bytes === undefined) return [];
  const owned = new Set(clientIds);
  return describeGrants(snapshotGrants(decodeSnapshot(bytes)).filter((g) => owned.has(g.clientId)));
}

/** Canonical, sorted text of rules, for equality checks with readable diffs. */
export function describeRules(rules: readonly Rule[]): string[] {
  return rules.map((r) => `${r.ruleId} ${r.clientId} ${r.severity} ${r.source} ${r.name}`).sort();
}

export function ofClients(rules: readonly Rule[], clientIds: readonly string[]): Rule[] {
  const owned = new Set(clientIds);
  return rules.filter((r) => owned.has(r.clientId));
}

/** The stored snapshot's version (key and embedded) and rules, or undefined when there is none. */
export async function storedSnapshot(
  redis: RedisClient,
  keys: SnapshotKeys,
): Promise<{ version: bigint; embeddedVersion: bigint; rules: Rule[] } | undefined> {
  const [version, bytes] = await Promise.all([
    readSnapshotVersion(redis, keys),
    readSnapshotBytes(redis, keys),
  ]);
  if (version === undefined || bytes === undefined) return undefined;
  const snapshot = decodeSnapshot(bytes);
  return { version, embeddedVersion: snapshot.version, rules: snapshotRules(snapshot) };
}

/** A from-scratch build (the updater's own load), restricted to `clientIds`. */
export async function fromScratch(sql: Sql, clientIds: readonly string[]): Promise<string[]> {
  return describeRules(ofClients(snapshotRules(await loadRulesSnapshot(sql)), clientIds));
}

/** The enabled rules of `clientIds`, read directly (no build version drawn, no build lock taken). */
export async function enabledRulesOf(sql: Sql, clientIds: readonly string[]): Promise<string[]> {
  const rows = await sql<{ id: string; client_id: string; severity: string; source: string; name: string }[]>`
    SELECT id, client_id, severity, source, name FROM rules WHERE enabled AND client_id IN ${sql(clientIds)}`;
  return describeRules(
    rows.map((r) => ({
      ruleId: r.id,
      clientId: r.client_id,
      severity: parseSeverityPattern(r.severity),
      source: r.source,
      name: r.name,
    })),
  );
}

/** The stored snapshot's rules of `clientIds` (empty when there is no snapshot). */
export async function storedRulesOf(
  redis: RedisClient,
  keys: SnapshotKeys,
  clientIds: readonly string[],
): Promise<string[]> {
  const stored = await storedSnapshot(redis, keys);
  return describeRules(ofClients(stored?.rules ?? [], clientIds));
}
