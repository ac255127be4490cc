/**
 * The aggregator's decisions: validate alerts.matched records, keep one row per (client, scope, alert,
 * route) in a batch, insert them, and announce every non-terminal ungrouped row on notifications.ready.
 */
import { fromBinary } from "@bufbuild/protobuf";
import { notificationReadyRecord } from "../../adapters/notification-ready.ts";
import { insertNotifications, type NotificationInput } from "../../adapters/notification-store.ts";
import type { Sql } from "../../adapters/postgres.ts";
import {
  alertmanagerGroupDefaults,
  deliveryRoute,
  type GroupDefaults,
  groupKey,
  groupLabels,
  resolveGrouping,
} from "../../core/grouping.ts";
import { defaultPolicy, type LifecyclePolicy } from "../../core/lifecycle.ts";
import { isScope } from "../../core/matching/scope.ts";
import { deliveryPolicyProblem } from "../../core/policy.ts";
import { isSeverityNumber, severityName } from "../../core/severity.ts";
import { textProblem } from "../../core/text.ts";
import { type AlertMatched, AlertMatchedSchema, AlertStatus } from "../../gen/alerting/v1/alert_pb.ts";
import type { ConsumedRecord } from "../../kafka/index.ts";
import type { Processor } from "../../runtime/consume-loop.ts";
import { InvalidRecordError } from "../../runtime/dead-letter.ts";

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const supportedSchemaVersions = new Set([0, 1]);

export function decodeAlertMatched(
  record: ConsumedRecord,
  groupDefaults: GroupDefaults = alertmanagerGroupDefaults,
): NotificationInput {
  let message: AlertMatched;
  try {
    message = fromBinary(AlertMatchedSchema, record.value ?? new Uint8Array(0));
  } catch (error) {
    throw new InvalidRecordError("value", `not an AlertMatched protobuf: ${(error as Error).message}`);
  }
  if (!supportedSchemaVersions.has(message.schemaVersion)) {
    throw new InvalidRecordError("schema_version", `unsupported version ${message.schemaVersion}`);
  }
  if (!uuidPattern.test(message.clientId)) throw new InvalidRecordError("client_id", "missing or not a UUID");
  if (message.alertId === "") throw new InvalidRecordError("alert_id", "missing");
  if (!isScope(message.scope))
    throw new InvalidRecordError("scope", "not client:<uuid>, shared:<name> or empty");
  if (!isSeverityNumber(message.severity))
    throw new InvalidRecordError("severity", `unknown value ${message.severity}`);
  if (message.source === "") throw new InvalidRecordError("source", "missing");
  if (message.name === "") throw new InvalidRecordError("name", "missing");
  refuseUnstorableText(message);
  const policyProblem = message.policy && deliveryPolicyProblem(message.policy);
  if (policyProblem !== undefined) throw new InvalidRecordError(...policyProblem);
  if (message.ruleIds.length === 0) throw new InvalidRecordError("rule_ids", "empty");
  if (message.silencedBy !== "" && !uuidPattern.test(message.silencedBy))
    throw new InvalidRecordError("silenced_by", "not a UUID");
  if (message.mutedByRule !== "" && !uuidPattern.test(message.mutedByRule))
    throw new InvalidRecordError("muted_by_rule", "not a UUID");
  for (const ruleId of message.ruleIds) {
    if (!uuidPattern.test(ruleId))
      throw new InvalidRecordError("rule_ids", `not a UUID: ${JSON.stringify(ruleId)}`);
  }
  // It names the record's route, which is that one rule's: a hostile record must not open routes of
  // rules it does not carry, nor put other rules on one.
  const muteRuleId = message.policy?.muteRuleId ?? "";
  if (muteRuleId !== "" && (message.ruleIds.length !== 1 || message.ruleIds[0] !== muteRuleId))
    throw new InvalidRecordError("policy.mute_rule_id", "not the record's one rule");
  if (message.mutedByRule !== "" && message.mutedByRule !== muteRuleId)
    throw new InvalidRecordError("muted_by_rule", "not the route's rule (policy.mute_rule_id)");
  const input: NotificationInput = {
    clientId: message.clientId,
    scope: message.scope,
    alertId: message.alertId,
    severity: severityName(message.severity),
    source: message.source,
    name: message.name,
    context: message.context,
    ruleIds: message.ruleIds,
    route: deliveryRoute(message.policy),
    eventTimeMs: Number(message.eventTimeUnixMs),
    silencedBy: message.silencedBy,
    mutedByRule: message.mutedByRule,
    ...lifecycleOf(message),
  };
  const group = groupOf(message, input, groupDefaults);
  if (group !== undefined) input.group = group;
  return input;
}

function groupOf(
  message: AlertMatched,
  input: NotificationInput,
  defaults: GroupDefaults,
): NotificationInput["group"] {
  const settings = resolveGrouping(message.policy, defaults);
  if (settings === undefined) return undefined;
  const labels = groupLabels(input, settings.groupBy);
  return { key: groupKey(input.clientId, settings, labels), labels, settings };
}

function lifecycleOf(message: AlertMatched): Pick<NotificationInput, "lifecycle"> {
  const endsAtMs = message.endsAtUnixMs > 0n ? Number(message.endsAtUnixMs) : null;
  switch (message.status) {
    case AlertStatus.UNSPECIFIED:
      return {};
    case AlertStatus.FIRING:
      return { lifecycle: { status: "firing", endsAtMs, policy: policyOf(message) } };
    case AlertStatus.RESOLVED:
      return { lifecycle: { status: "resolved", endsAtMs, policy: policyOf(message) } };
    default:
      throw new InvalidRecordError("status", `unknown value ${message.status}`);
  }
}

/** AlertMatched.policy as the lifecycle follows it; absent: the defaults. */
function policyOf(message: AlertMatched): LifecyclePolicy {
  const policy = message.policy;
  if (policy === undefined) return defaultPolicy;
  const repeatIntervalMs = policy.repeatIntervalMs;
  return {
    sendResolved: !policy.skipResolved,
    repeatIntervalMs: repeatIntervalMs === undefined ? null : Number(repeatIntervalMs),
  };
}

/** Text the insert would fail on for good (NUL: SQLSTATE 22021 in text, 22P05 in jsonb), named by field. */
function refuseUnstorableText(message: AlertMatched): void {
  const texts: [string, string][] = [
    ["alert_id", message.alertId],
    ["source", message.source],
    ["name", message.name],
  ];
  for (const [field, text] of texts) {
    const problem = textProblem(text);
    if (problem !== undefined) throw new InvalidRecordError(field, problem);
  }
  for (const [key, value] of Object.entries(message.context)) {
    const keyProblem = textProblem(key);
    if (keyProblem !== undefined) throw new InvalidRecordError("context", `a key ${keyProblem}`);
    const problem = textProblem(value);
    if (problem !== undefined) throw new InvalidRecordError(`context.${key}`, problem);
  }
}

/**
 * Redelivered records repeat a (client, scope, alert, route) within one batch; Postgres rejects such a
 * batch.
 * Alerts with a lifecycle are all kept, in order: each submission may move the alert's state.
 */
export function uniqueByDedupeKey(rows: readonly NotificationInput[]): NotificationInput[] {
  const seen = new Map<string, NotificationInput>();
  const lifecycle: NotificationInput[] = [];
  for (const row of rows) {
    const key = `${row.clientId}\u0000${row.scope}\u0000${row.alertId}\u0000${row.route}`;
    if (row.lifecycle !== undefined) lifecycle.push(row);
    else if (!seen.has(key)) seen.set(key, row);
  }
  return [...seen.values(), ...lifecycle];
}

/**
 * Batches are processed concurrently (PROCESS_CONCURRENCY_MAX), but the submissions of alerts with a
 * lifecycle are applied one batch after the other, in the order consumed: a later batch's resolution
 * stored before an earlier batch's firing submission would leave the alert resolved, as it should be,
 * but its client would never hear of that episode (src/core/lifecycle.ts). A retried batch may still
 * come after a later one; the lifecycle's decisions do not depend on the order, only what is told.
 */
export function createAggregatorProcessor(
  sql: Sql,
  outputTopic: string,
  groupDefaults: GroupDefaults = alertmanagerGroupDefaults,
): Processor<NotificationInput> {
  let lifecycleTurn: Promise<unknown> = Promise.resolve();
  return {
    decode: (record) => decodeAlertMatched(record, groupDefaults),
    async process(batch) {
      const rows = uniqueByDedupeKey(batch.map((d) => d.value));
      const withLifecycle = rows.filter((row) => row.lifecycle !== undefined);
      const lifecycle = lifecycleTurn.then(() => insertNotifications(sql, withLifecycle));
      lifecycleTurn = lifecycle.catch(() => undefined);
      const [plain, states] = await Promise.all([
        insertNotifications(
          sql,
          rows.filter((row) => row.lifecycle === undefined),
        ),
        lifecycle,
      ]);
      return [...plain, ...states].map((row) => notificationReadyRecord(row, outputTopic));
    },
  };
}
