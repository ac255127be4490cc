/**
 * Prebuilt AlertNew bytes for the benches, encoded by hand (toBinary manages ~100k/s, 10 s for 1M):
 * the field writers here serve both `encodeAlertNew` (one whole alert) and bench/pipeline/alerts.ts
 * (per-client fields encoded once). `checkAlertEncoding` proves the bytes equal what
 * @bufbuild/protobuf makes of the same alert.
 */
import { WIRE_LENGTH_DELIMITED, WIRE_VARINT } from "../../src/core/wire.ts";
import { type Alert, alertRecord } from "../../src/stages/alert-producer/alerts.ts";

/** An alert with its own id (never empty here: the hand encoding writes field 1 even when empty). */
export type BenchAlert = Alert;

const utf8 = new TextEncoder();

/** Appends the varint of a non-negative integer up to 2^53. */
export function writeVarint(out: number[], value: number): void {
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
}

/** Appends a varint field (an enum or integer). */
export function writeVarintField(out: number[], field: number, value: number): void {
  writeVarint(out, (field << 3) | WIRE_VARINT);
  writeVarint(out, value);
}

/** Appends a string field, written even when empty. */
export function writeStringField(out: number[], field: number, text: string): void {
  const bytes = utf8.encode(text);
  writeVarint(out, (field << 3) | WIRE_LENGTH_DELIMITED);
  writeVarint(out, bytes.length);
  for (const byte of bytes) out.push(byte);
}

/** Appends a map<string, string> field: one entry (key = 1, value = 2) per pair, in key order. */
export function writeStringMapField(out: number[], field: number, map: Record<string, string>): void {
  for (const [key, value] of Object.entries(map)) {
    const entry: number[] = [];
    writeStringField(entry, 1, key);
    writeStringField(entry, 2, value);
    writeVarint(out, (field << 3) | WIRE_LENGTH_DELIMITED);
    writeVarint(out, entry.length);
    for (const byte of entry) out.push(byte);
  }
}

/** The AlertNew record value, fields in toBinary's order, schema version 1; the scope only when not empty. */
export function encodeAlertNew(alert: BenchAlert): Uint8Array {
  const out: number[] = [];
  writeStringField(out, 1, alert.alertId);
  writeVarintField(out, 2, alert.severity);
  writeStringField(out, 3, alert.source);
  writeStringField(out, 4, alert.name);
  writeStringMapField(out, 5, alert.context);
  writeVarintField(out, 6, alert.eventTimeUnixMs);
  writeVarintField(out, 7, 1);
  if (alert.scope) writeStringField(out, 10, alert.scope);
  return Uint8Array.from(out);
}

export function checkAlertEncoding(alert: BenchAlert): void {
  const expected = alertRecord(alert, "check").value as Uint8Array;
  const ours = encodeAlertNew(alert);
  if (Buffer.compare(Buffer.from(expected), Buffer.from(ours)) !== 0)
    throw new Error("bench AlertNew encoding differs from toBinary");
}
