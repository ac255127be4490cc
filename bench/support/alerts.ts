/**
 * Prebuilt AlertNew bytes for the benches, encoded by hand (toBinary manages ~100k/s, 10 s for 1M);
 * `checkAlertEncoding` proves the bytes equal what @bufbuild/protobuf makes of the same alert.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { varintSize, WIRE_LENGTH_DELIMITED, WIRE_VARINT, writeVarint32 } from "../../src/core/wire.ts";
import { AlertNewSchema } from "../../src/gen/alerting/v1/alert_pb.ts";

export interface BenchAlert {
  alertId: string;
  severity: number;
  source: string;
  name: string;
  context: Record<string, string>;
  eventTimeUnixMs: number;
}

const utf8 = new TextEncoder();

export function encodeAlertNew(alert: BenchAlert): Uint8Array {
  const parts: number[] = [];
  const string = (field: number, value: string) => {
    const bytes = utf8.encode(value);
    parts.push((field << 3) | WIRE_LENGTH_DELIMITED);
    varint(parts, bytes.length);
    for (const b of bytes) parts.push(b);
  };
  string(1, alert.alertId);
  parts.push((2 << 3) | WIRE_VARINT, alert.severity);
  string(3, alert.source);
  string(4, alert.name);
  for (const [key, value] of Object.entries(alert.context)) {
    const k = utf8.encode(key);
    const v = utf8.encode(value);
    const entryLength = 2 + varintSize(k.length) + k.length + varintSize(v.length) + v.length;
    parts.push((5 << 3) | WIRE_LENGTH_DELIMITED);
    varint(parts, entryLength);
    parts.push((1 << 3) | WIRE_LENGTH_DELIMITED);
    varint(parts, k.length);
    for (const b of k) parts.push(b);
    parts.push((2 << 3) | WIRE_LENGTH_DELIMITED);
    varint(parts, v.length);
    for (const b of v) parts.push(b);
  }
  parts.push((6 << 3) | WIRE_VARINT);
  varint(parts, alert.eventTimeUnixMs);
  parts.push((7 << 3) | WIRE_VARINT, 1);
  return Uint8Array.from(parts);
}

/** Varint of a non-negative integer up to 2^53. */
function varint(out: number[], value: number): void {
  if (value < 2 ** 31) {
    const buffer = new Uint8Array(5);
    const end = writeVarint32(buffer, 0, value);
    for (let i = 0; i < end; i++) out.push(buffer[i] as number);
    return;
  }
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
}

export function checkAlertEncoding(alert: BenchAlert): void {
  const expected = toBinary(
    AlertNewSchema,
    create(AlertNewSchema, {
      alertId: alert.alertId,
      severity: alert.severity,
      source: alert.source,
      name: alert.name,
      context: alert.context,
      eventTimeUnixMs: BigInt(alert.eventTimeUnixMs),
      schemaVersion: 1,
    }),
  );
  const ours = encodeAlertNew(alert);
  if (Buffer.compare(Buffer.from(expected), Buffer.from(ours)) !== 0)
    throw new Error("bench AlertNew encoding differs from toBinary");
}
