/**
 * The evaluator's hot path: read only the AlertNew fields matching needs, look the alert up in the
 * compiled rules, keep the clients granted the alert's scope, and emit one alerts.matched record per
 * remaining client by appending that client's precomputed fields 8 and 9 to the original bytes. No
 * protobuf object is built per alert.
 */
import { deriveAlertId } from "../../core/alert-id.ts";
import type { ClientMatch } from "../../core/matching/types.ts";
import { isSeverityNumber } from "../../core/severity.ts";
import { type AlertHeader, encodeAlertMatched, readAlertNew, WireError } from "../../core/wire.ts";
import type { ConsumedRecord, ProduceRecord } from "../../kafka/index.ts";
import type { Processor } from "../../runtime/consume-loop.ts";
import { InvalidRecordError } from "../../runtime/dead-letter.ts";
import type { RuleBook } from "./rules.ts";

const supportedSchemaVersions = new Set([0, 1]);
const textLengthMax = 1024;

export interface Alert {
  bytes: Uint8Array;
  header: AlertHeader;
}

export function decodeAlertNew(record: ConsumedRecord): Alert {
  const bytes = record.value;
  if (bytes === null || bytes.byteLength === 0) throw new InvalidRecordError("value", "empty record");
  let header: AlertHeader;
  try {
    header = readAlertNew(bytes);
  } catch (error) {
    if (error instanceof WireError) throw new InvalidRecordError(error.field, error.reason);
    throw error;
  }
  if (!supportedSchemaVersions.has(header.schemaVersion)) {
    throw new InvalidRecordError("schema_version", `unsupported version ${header.schemaVersion}`);
  }
  if (!isSeverityNumber(header.severity))
    throw new InvalidRecordError("severity", `unknown severity ${header.severity}`);
  if (header.source === "" || header.source.length > textLengthMax)
    throw new InvalidRecordError("source", "missing or too long");
  if (header.name === "" || header.name.length > textLengthMax)
    throw new InvalidRecordError("name", "missing or too long");
  if (header.alertId.length > textLengthMax) throw new InvalidRecordError("alert_id", "too long");
  return { bytes, header };
}

const clientKeys = new WeakMap<ClientMatch, Uint8Array>();
const utf8 = new TextEncoder();

/**
 * The compiled matcher shares group objects across alerts (immutable by type, not frozen: freezing is slow
 * in JSC), so each client's key bytes are made once per group; an unshared group's entry dies with it.
 */
function keyOf(group: ClientMatch): Uint8Array {
  let key = clientKeys.get(group);
  if (key === undefined) {
    key = utf8.encode(group.clientId);
    clientKeys.set(group, key);
  }
  return key;
}

/** Alerts whose scope has no known form (src/core/matching/scope.ts): matched to no client, counted here. */
export interface MalformedScopeCounter {
  inc(count: number): void;
}

export function createEvaluatorProcessor(
  rules: RuleBook,
  outputTopic: string,
  malformedScopes: MalformedScopeCounter,
): Processor<Alert> {
  return {
    decode: decodeAlertNew,
    async process(batch) {
      const loaded = rules.current;
      if (loaded === undefined) throw new Error("no rules loaded yet"); // the loop waits for readiness
      const { matcher, scopes } = loaded;
      const outputs: ProduceRecord[] = [];
      let malformed = 0;
      for (const { value: alert } of batch) {
        const { header } = alert;
        const groups = scopes.admit(header.scope, matcher.match(header.severity, header.source, header.name));
        if (groups === undefined) {
          malformed++;
          continue;
        }
        if (groups.length === 0) continue;
        const derivedId =
          header.alertId === ""
            ? deriveAlertId(header.severity, header.source, header.name, header.eventTimeUnixMs)
            : undefined;
        for (const group of groups) {
          outputs.push({
            topic: outputTopic,
            key: keyOf(group),
            value: encodeAlertMatched(alert.bytes, derivedId, group),
          });
        }
      }
      if (malformed > 0) malformedScopes.inc(malformed);
      return outputs;
    },
  };
}
