/** COPY output made in-process, for the parser's tests and bench/snapshot-codec.ts. */
import type { Rule } from "../src/core/matching/types.ts";
import { severityPatternName } from "../src/core/severity.ts";
import { parseUuid } from "../src/core/snapshot.ts";

/** What COPY (SELECT id, client_id, severity, source, name ...) TO STDOUT (FORMAT binary) sends. */
export function copyBytes(
  rules: readonly Rule[],
  { flags = 0, extension = new Uint8Array(0) }: { flags?: number; extension?: Uint8Array } = {},
): Uint8Array {
  const encoder = new TextEncoder();
  let out = new Uint8Array(1024);
  let pos = 0;
  const write = (bytes: Uint8Array) => {
    if (pos + bytes.length > out.length) {
      const larger = new Uint8Array(Math.max(out.length * 2, pos + bytes.length));
      larger.set(out);
      out = larger;
    }
    out.set(bytes, pos);
    pos += bytes.length;
  };
  const int16 = (value: number) => write(new Uint8Array([(value >> 8) & 0xff, value & 0xff]));
  const int32 = (value: number) => write(new Uint8Array([value >>> 24, value >>> 16, value >>> 8, value]));
  const field = (bytes: Uint8Array) => {
    int32(bytes.length);
    write(bytes);
  };
  const uuid = new Uint8Array(16);
  write(encoder.encode("PGCOPY\n"));
  write(new Uint8Array([0xff, 0x0d, 0x0a, 0x00])); // \377\r\n\0
  int32(flags);
  int32(extension.length);
  write(extension);
  for (const rule of rules) {
    int16(5);
    for (const id of [rule.ruleId, rule.clientId]) {
      parseUuid(id, uuid, 0);
      field(uuid);
    }
    for (const text of [severityPatternName(rule.severity), rule.source, rule.name])
      field(encoder.encode(text));
  }
  int16(-1);
  return out.slice(0, pos);
}
