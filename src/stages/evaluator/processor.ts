/**
 * The evaluator's hot path: read only the AlertNew fields matching needs, look the alert up in the
 * compiled rules, keep the clients granted the alert's scope, and emit one alerts.matched record per
 * remaining client by appending that client's precomputed fields 8 and 9 to the original bytes. No
 * protobuf object is built per alert, except for a client with open silences: then the alert's labels
 * are decoded once, and field 13 (silenced_by) is appended when one of its active silences matches.
 * A client whose matched rules have settings gets them as field 14 (policy), and field 15
 * (muted_by_rule) when the route's rule is inside one of its mute windows now, when the alert is
 * processed (not at its event time: see src/core/mute-window.ts). A client whose matched rules group
 * differently, or have mute windows, gets one record per route (src/core/policy.ts), each with its own
 * rules and settings.
 */
import { fromBinary } from "@bufbuild/protobuf";
import { deriveAlertId } from "../../core/alert-id.ts";
import { assert } from "../../core/assert.ts";
import type { ClientMatch } from "../../core/matching/types.ts";
import { type ClientPolicy, mutedBy } from "../../core/policy.ts";
import { isSeverityNumber } from "../../core/severity.ts";
import { alertLabels } from "../../core/silence.ts";
import {
  type AlertHeader,
  appendField,
  encodeAlertMatched,
  MATCHED_MUTED_BY_RULE,
  MATCHED_POLICY,
  MATCHED_SILENCED_BY,
  readAlertNew,
  WireError,
} from "../../core/wire.ts";
import { AlertNewSchema } from "../../gen/alerting/v1/alert_pb.ts";
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

export interface Counter {
  inc(count: number): void;
}

export interface EvaluatorCounters {
  /** Alerts whose scope has no known form (src/core/matching/scope.ts): matched to no client. */
  malformedScopes: Counter;
  /** Client matches one of the client's active silences matched: flagged, never sent. */
  silencedMatches: Counter;
  /** Records (one per route of a client match) whose rule was inside one of its mute windows. */
  mutedMatches: Counter;
}

/** The labels silences see (src/core/silence.ts); the context is decoded only when a client has silences. */
function labelsOf(alert: Alert): Map<string, string> {
  const { severity, source, name } = alert.header;
  let context: Record<string, string> = {};
  try {
    context = fromBinary(AlertNewSchema, alert.bytes).context;
  } catch {
    // A context the scan skipped over but that does not decode: the aggregator's full decode
    // dead-letters the record with its reason; here it only has no context labels.
  }
  return alertLabels({ severity, source, name, context });
}

export function createEvaluatorProcessor(
  rules: RuleBook,
  outputTopic: string,
  counters: EvaluatorCounters,
): Processor<Alert> {
  return {
    decode: decodeAlertNew,
    async process(batch) {
      const loaded = rules.current;
      // The loop consumes nothing until the stage is ready, which needs a snapshot: a bug otherwise.
      assert(loaded !== undefined, "alerts to process before any rules snapshot was loaded");
      const { matcher, scopes, silences, policies } = loaded;
      const outputs: ProduceRecord[] = [];
      const nowMs = Date.now();
      let malformed = 0;
      let silenced = 0;
      let muted = 0;
      const mutedInBatch = new Map<ClientPolicy, string | undefined>();
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
        let labels: Map<string, string> | undefined;
        for (const group of groups) {
          let silenceId: string | undefined;
          if (silences.has(group.clientId)) {
            labels ??= labelsOf(alert);
            silenceId = silences.silencedBy(group.clientId, labels, nowMs);
            if (silenceId !== undefined) silenced++;
          }
          for (const { match, policy } of policies.routesOf(group)) {
            let value = encodeAlertMatched(alert.bytes, derivedId, match);
            if (policy.delivery !== undefined) value = appendField(value, MATCHED_POLICY, policy.delivery);
            if (policy.muting !== undefined) {
              // One time for the whole batch, so each route's windows (wall clocks via Intl) once.
              const ruleId = mutedInBatch.has(policy) ? mutedInBatch.get(policy) : mutedBy(policy, nowMs);
              mutedInBatch.set(policy, ruleId);
              if (ruleId !== undefined) {
                value = appendField(value, MATCHED_MUTED_BY_RULE, ruleId);
                muted++;
              }
            }
            if (silenceId !== undefined) value = appendField(value, MATCHED_SILENCED_BY, silenceId);
            outputs.push({ topic: outputTopic, key: keyOf(group), value });
          }
        }
      }
      if (malformed > 0) counters.malformedScopes.inc(malformed);
      if (silenced > 0) counters.silencedMatches.inc(silenced);
      if (muted > 0) counters.mutedMatches.inc(muted);
      return outputs;
    },
  };
}
