import { notFound, versionConflict } from "./http.ts";
import { writeRuleChanges } from "./outbox.ts";
import { deleteClientGrants } from "./scopes-store.ts";
import { afterClause, type Db, type Scope } from "./store.ts";

export interface Client {
  id: string;
  name: string;
  version: number;
  created_at: Date;
  updated_at: Date;
}

export async function insertClient(db: Db, name: string): Promise<Client> {
  const [row] = await db<Client[]>`INSERT INTO clients (name) VALUES (${name}) RETURNING *`;
  return row as Client;
}

/** A client key sees only its own client. */
export async function findClient(db: Db, scope: Scope, id: string): Promise<Client | undefined> {
  if (scope !== null && scope !== id) return undefined;
  const [row] = await db<Client[]>`SELECT * FROM clients WHERE id = ${id}`;
  return row;
}

export async function listClients(db: Db, afterId: string | null, limit: number): Promise<Client[]> {
  return db<Client[]>`
    SELECT * FROM clients WHERE true ${afterClause(db, afterId)} ORDER BY id LIMIT ${limit + 1}`;
}

export async function updateClient(
  db: Db,
  scope: Scope,
  id: string,
  expectedVersion: number,
  name: string | undefined,
): Promise<Client> {
  if (scope !== null && scope !== id) throw notFound("client");
  const [row] = await db<Client[]>`
    UPDATE clients SET name = COALESCE(${name ?? null}, name), version = version + 1, updated_at = now()
    WHERE id = ${id} AND version = ${expectedVersion} RETURNING *`;
  if (row) return row;
  const current = await findClient(db, scope, id);
  if (!current) throw notFound("client");
  throw versionConflict(current.version);
}

/**
 * Deleting a client cascades to its rules and grants in Postgres; they are deleted here first so that
 * each rule gets its DELETED outbox event, and the snapshot its rebuild, in the same transaction.
 */
export async function deleteClient(tx: Db, id: string, expectedVersion: number | undefined): Promise<void> {
  // Locking the client blocks concurrent rule inserts for it (their FK check) until we commit.
  const [client] = await tx<Client[]>`SELECT * FROM clients WHERE id = ${id} FOR UPDATE`;
  if (!client) throw notFound("client");
  if (expectedVersion !== undefined && client.version !== expectedVersion) {
    throw versionConflict(client.version);
  }
  const rules = await tx<{ id: string; version: number }[]>`
    DELETE FROM rules WHERE client_id = ${id} RETURNING id, version`;
  await writeRuleChanges(
    tx,
    rules.map((r) => ({ rule_id: r.id, client_id: id, action: "DELETED", version: r.version + 1 })),
  );
  await deleteClientGrants(tx, id);
  await tx`DELETE FROM clients WHERE id = ${id}`;
}
