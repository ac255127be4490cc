/**
 * AlertNew records for the pipeline bench, encoded by hand (with bench/support/alerts.ts's field
 * writers) so that producing 200k alerts at full speed costs the producer little: per client name the
 * fields that never change (severity, source, name, context, schema version, scope) are encoded once; per
 * alert only alert_id and event_time_unix_ms are written. `checkEncoding` compares the result with @bufbuild/protobuf's decoding once per run.
 *
 * Alert ids are `<run>-<phase>-<index>`; alert `index` is named `a<index % clients>`, and client i has
 * the one rule (HIGH, source, `a<i>`), so each alert matches exactly one client. Each alert comes in
 * under that client's private scope (`client:<id>`), as ingest would stamp it from the client's own
 * credential, so the evaluator's scope filter is on the measured path.
 */
import { fromBinary } from "@bufbuild/protobuf";
import { clientScope } from "../../src/core/matching/scope.ts";
import { AlertNewSchema, Severity } from "../../src/gen/alerting/v1/alert_pb.ts";
import { writeStringField, writeStringMapField, writeVarintField } from "../support/alerts.ts";

export const alertName = (clientIndex: number) => `a${clientIndex}`;
export const alertId = (run: string, phase: string, index: number) => `${run}-${phase}-${index}`;

export class AlertEncoder {
  /** Per client index: fields 2, 3, 4, 5 and 7, already encoded. */
  readonly #fixed: Uint8Array[];

  readonly clients: number;

  /** `source`: one for every client, or one per client (the grouped phase: one group per source). */
  constructor(
    readonly source: string | readonly string[],
    readonly clientIds: readonly string[],
  ) {
    this.clients = clientIds.length;
    this.#fixed = clientIds.map((clientId, i) => {
      const out: number[] = [];
      writeVarintField(out, 2, Severity.HIGH);
      writeStringField(out, 3, this.sourceOf(i));
      writeStringField(out, 4, alertName(i));
      writeStringMapField(out, 5, { host: "bench-1" });
      writeVarintField(out, 7, 1);
      writeStringField(out, 10, clientScope(clientId));
      return Uint8Array.from(out);
    });
  }

  sourceOf(clientIndex: number): string {
    return typeof this.source === "string" ? this.source : (this.source[clientIndex] as string);
  }

  encode(id: string, index: number, eventTimeMs: number): Uint8Array {
    const head: number[] = [];
    writeStringField(head, 1, id);
    const fixed = this.#fixed[index % this.clients] as Uint8Array;
    const tail: number[] = [];
    writeVarintField(tail, 6, eventTimeMs);
    const bytes = new Uint8Array(head.length + fixed.length + tail.length);
    bytes.set(head, 0);
    bytes.set(fixed, head.length);
    bytes.set(tail, head.length + fixed.length);
    return bytes;
  }
}

/** Throws unless the hand encoding decodes, with the reference decoder, to what was meant. */
export function checkEncoding(encoder: AlertEncoder): void {
  const eventTimeMs = Date.now();
  const decoded = fromBinary(AlertNewSchema, encoder.encode("check-x-7", 7, eventTimeMs));
  const ok =
    decoded.alertId === "check-x-7" &&
    decoded.severity === Severity.HIGH &&
    decoded.source === encoder.sourceOf(7 % encoder.clients) &&
    decoded.name === alertName(7 % encoder.clients) &&
    decoded.context.host === "bench-1" &&
    decoded.eventTimeUnixMs === BigInt(eventTimeMs) &&
    decoded.schemaVersion === 1 &&
    decoded.scope === clientScope(encoder.clientIds[7 % encoder.clients] as string);
  if (!ok)
    throw new Error(
      `hand-encoded AlertNew decodes wrongly: ${JSON.stringify(decoded, (_, v) => (typeof v === "bigint" ? String(v) : v))}`,
    );
}
