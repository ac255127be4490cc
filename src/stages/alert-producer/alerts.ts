/**
 * Building AlertNew records (proto/alerting/v1/alert.proto), shared by the load generator and HTTP
 * ingest: the generated stream of the `load` command, and the encoding of any alert into its record.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { deriveAlertId } from "../../core/alert-id.ts";
import { AlertNewSchema } from "../../gen/alerting/v1/alert_pb.ts";
import type { ProduceRecord } from "../../kafka/index.ts";
import type { LoadOptions } from "./flags.ts";
import { createPicker, createRandom } from "./random.ts";

export const schemaVersion = 1;

export interface Alert {
  /** Empty: the evaluator derives the id from (severity, source, name, event time). */
  alertId: string;
  severity: number;
  source: string;
  name: string;
  context: Record<string, string>;
  eventTimeUnixMs: number;
  /**
   * The stream it comes in under (src/core/matching/scope.ts): ingest stamps its credential's scope;
   * absent or "" only from internal producers writing straight to Kafka, matched against every rule.
   */
  scope?: string;
}

/** The id the pipeline will know the alert by: its own, or the one the evaluator derives. */
export function effectiveAlertId(alert: Alert): string {
  return alert.alertId !== ""
    ? alert.alertId
    : deriveAlertId(alert.severity, alert.source, alert.name, BigInt(alert.eventTimeUnixMs));
}

/** The alerts.new record: key = the effective alert id, so every copy of an alert lands together. */
export function alertRecord(alert: Alert, topic: string, alertId = effectiveAlertId(alert)): ProduceRecord {
  const value = toBinary(
    AlertNewSchema,
    create(AlertNewSchema, {
      alertId: alert.alertId,
      severity: alert.severity,
      source: alert.source,
      name: alert.name,
      context: alert.context,
      eventTimeUnixMs: BigInt(alert.eventTimeUnixMs),
      schemaVersion,
      scope: alert.scope ?? "",
    }),
  );
  return { topic, key: alertId, value };
}

export type StreamOptions = Pick<
  LoadOptions,
  "seed" | "runId" | "severities" | "sources" | "names" | "context" | "hashedIds" | "scope"
>;

/**
 * The load generator's alerts: severity, source and name drawn (in that order) from the weighted
 * lists with the seeded PRNG; ids `<runId>-<seq>` counting from 0; every alert in `options.scope`. Only
 * the event time comes from `clockMs`, so the same options always give the same stream.
 */
export function createAlertStream(options: StreamOptions, clockMs: () => number = Date.now): () => Alert {
  const random = createRandom(options.seed);
  const pickSeverity = createPicker(options.severities, random);
  const pickSource = createPicker(options.sources, random);
  const pickName = createPicker(options.names, random);
  let seq = 0;
  return () => {
    const id = options.hashedIds ? "" : `${options.runId}-${seq}`;
    seq++;
    return {
      alertId: id,
      severity: pickSeverity(),
      source: pickSource(),
      name: pickName(),
      context: options.context,
      eventTimeUnixMs: clockMs(),
      scope: options.scope,
    };
  };
}
