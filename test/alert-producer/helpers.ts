/**
 * Shared by the alert-producer tests: a topic of their own, the records written to it decoded back
 * as AlertNew, and the producer process itself started as `bun main.ts <command>`, with a client and
 * an ingest credential of its own.
 */
import { fromBinary } from "@bufbuild/protobuf";
import type { Subprocess } from "bun";
import { clientWithCredential, type TestCredential } from "../../harness/ingest-credentials.ts";
import { brokers, quiet } from "../../harness/kafka.ts";
import { uniqueName } from "../../harness/names.ts";
import type { TestSchema } from "../../harness/postgres.ts";
import { type StageProcess, startStage, stopStage } from "../../harness/stages.ts";
import { type AlertNew, AlertNewSchema } from "../../src/gen/alerting/v1/alert_pb.ts";
import { Admin, Consumer } from "../../src/kafka/index.ts";

const repoRoot = new URL("../..", import.meta.url).pathname;
export const mainPath = "src/stages/alert-producer/main.ts";

export async function newTopic(partitions = 3): Promise<string> {
  const name = uniqueName("test-alert-producer");
  const admin = new Admin(brokers, {}, quiet);
  try {
    await admin.createTopics([{ name, partitions }]);
  } finally {
    admin.close();
  }
  return name;
}

export interface WrittenAlert {
  key: string;
  alert: AlertNew;
}

/**
 * Reads `topic` from the start until `count` records arrived, then `settleMs` more to catch any
 * extra record; returns everything seen, decoded (a record that does not decode fails the test).
 */
export async function readAlerts(
  topic: string,
  count: number,
  timeoutMs = 20_000,
  settleMs = 500,
): Promise<WrittenAlert[]> {
  const consumer = new Consumer({ brokers, groupId: uniqueName("group"), topics: [topic], logger: quiet });
  const seen: WrittenAlert[] = [];
  try {
    const deadlineMs = performance.now() + timeoutMs;
    let settleUntilMs = Number.POSITIVE_INFINITY;
    while (performance.now() < Math.min(deadlineMs, settleUntilMs)) {
      for (const record of await consumer.consume(1000, 100)) {
        seen.push({
          key: new TextDecoder().decode(record.key ?? new Uint8Array()),
          alert: fromBinary(AlertNewSchema, record.value ?? new Uint8Array()),
        });
      }
      if (seen.length >= count && settleUntilMs === Number.POSITIVE_INFINITY)
        settleUntilMs = performance.now() + settleMs;
    }
  } finally {
    await consumer.close();
  }
  return seen;
}

/** A consumer of `topic` from its start that remembers every record by key, for tests to wait on. */
export class TopicReader {
  readonly #consumer: Consumer;
  readonly #byKey = new Map<string, WrittenAlert[]>();

  constructor(topic: string) {
    this.#consumer = new Consumer({ brokers, groupId: uniqueName("group"), topics: [topic], logger: quiet });
  }

  /** Every record written under each of `keys` (waiting up to `timeoutMs` for all of them). */
  async waitFor(keys: readonly string[], timeoutMs = 15_000): Promise<WrittenAlert[][]> {
    const deadlineMs = performance.now() + timeoutMs;
    while (keys.some((key) => !this.#byKey.has(key)) && performance.now() < deadlineMs) await this.#poll();
    return keys.map((key) => this.#byKey.get(key) ?? []);
  }

  /** Every record seen whose alert satisfies `predicate`, once `count` of them arrived (or the time is up). */
  async waitForMatching(
    count: number,
    predicate: (alert: AlertNew) => boolean,
    timeoutMs = 15_000,
  ): Promise<WrittenAlert[]> {
    const deadlineMs = performance.now() + timeoutMs;
    const matching = () => [...this.#byKey.values()].flat().filter(({ alert }) => predicate(alert));
    while (matching().length < count && performance.now() < deadlineMs) await this.#poll();
    return matching();
  }

  async #poll(): Promise<void> {
    for (const record of await this.#consumer.consume(1000, 100)) {
      const written = {
        key: new TextDecoder().decode(record.key ?? new Uint8Array()),
        alert: fromBinary(AlertNewSchema, record.value ?? new Uint8Array()),
      };
      this.#byKey.set(written.key, [...(this.#byKey.get(written.key) ?? []), written]);
    }
  }

  close(): Promise<void> {
    return this.#consumer.close();
  }
}

export function runProducer(
  args: string[],
  env: Record<string, string> = {},
): Subprocess<"ignore", "pipe", "pipe"> {
  return Bun.spawn([process.execPath, mainPath, ...args], {
    cwd: repoRoot,
    env: { ...process.env, LOG_LEVEL: "warn", ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
}

export interface Server {
  url: string;
  process: StageProcess<"alert-producer">["process"];
  output: string[];
  /** A client made for this server, and a credential for its private scope. */
  clientId: string;
  credential: TestCredential;
}

/** The credential postJson sends to each running server, by origin. */
const credentialsByOrigin = new Map<string, TestCredential>();

/**
 * `serve` on a free port in the test file's schema, writing to `topic`, with a client and an ingest
 * credential of its own; resolves once it logged that it started.
 */
export async function startServer(
  db: TestSchema,
  topic: string,
  env: Record<string, string> = {},
): Promise<Server> {
  const { clientId, credential } = await clientWithCredential(db.sql);
  const stage = await startStage("alert-producer", { POSTGRES_URL: db.url, OUTPUT_TOPIC: topic, ...env }, [
    process.execPath,
    mainPath,
    "serve",
  ]);
  const url = `http://127.0.0.1:${stage.httpPort}`;
  credentialsByOrigin.set(url, credential);
  return { url, process: stage.process, output: stage.output, clientId, credential };
}

/** Stops the server; its exit code. */
export async function stopServer(server: Server): Promise<number | null> {
  const exitCode = await stopStage({ name: "alert-producer", httpPort: 0, ...server });
  credentialsByOrigin.delete(server.url);
  return exitCode;
}

/**
 * POSTs JSON, authorized by the credential of the server started for that URL unless `headers` has
 * its own `authorization` (an empty one sends none).
 */
export function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  const credential = credentialsByOrigin.get(new URL(url).origin);
  const { authorization = credential?.authorization ?? "", ...rest } = headers;
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}), ...rest },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}
