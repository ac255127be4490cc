/**
 * Ingest credentials for tests that run ingest without the rule service: a client (or a shared scope) of
 * the test's own and a credential issued by the rule service's own store function, straight in Postgres.
 */
import type { Sql } from "../src/adapters/postgres.ts";
import {
  type CredentialOwner,
  insertIngestCredential,
} from "../src/stages/rule-service/ingest-credentials-store.ts";
import { uniqueName } from "./names.ts";

export interface TestCredential {
  id: string;
  /** `client:<id>` or `shared:<name>`. */
  scope: string;
  secret: string;
  /** The Authorization header value that carries it. */
  authorization: string;
}

export async function issueCredential(sql: Sql, owner: CredentialOwner): Promise<TestCredential> {
  const created = await sql.begin((tx) =>
    insertIngestCredential(tx, owner, { name: uniqueName("test-credential") }),
  );
  return {
    id: created.id,
    scope: created.scope,
    secret: created.secret,
    authorization: `Bearer ${created.secret}`,
  };
}

/** A client of the test's own, with a credential for its private scope. */
export async function clientWithCredential(
  sql: Sql,
): Promise<{ clientId: string; credential: TestCredential }> {
  const [client] = await sql<{ id: string }[]>`
    INSERT INTO clients (name) VALUES (${uniqueName("test-ingest-client")}) RETURNING id`;
  const clientId = (client as { id: string }).id;
  return { clientId, credential: await issueCredential(sql, { clientId }) };
}
