import { describe, expect, test } from "bun:test";
import { create, equals, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { pick, prng, randomUuid } from "../../harness/random-rules.ts";
import {
  AlertMatchedSchema,
  type AlertNew,
  AlertNewSchema,
  DeliveryPolicySchema,
} from "../gen/alerting/v1/alert_pb.ts";
import { deriveAlertId } from "./alert-id.ts";
import { textProblem } from "./text.ts";
import {
  appendField,
  clientSuffix,
  encodeAlertMatched,
  MATCHED_MUTED_BY_RULE,
  MATCHED_POLICY,
  MATCHED_SILENCED_BY,
  readAlertNew,
  WireError,
} from "./wire.ts";

const texts = [
  "",
  "a",
  "db-1",
  "Zürich ☃",
  "ошибка 🔥",
  "\uFEFFbom",
  "*",
  "x".repeat(300),
  "\u0000nul",
  "𝔘𝔫𝔦",
];
const times = [
  0n,
  1n,
  -1n,
  1_700_000_000_000n,
  -1_700_000_000_000n,
  2n ** 53n,
  9223372036854775807n,
  -9223372036854775808n,
];

function randomAlert(random: () => number): AlertNew {
  const context: Record<string, string> = {};
  for (let i = Math.floor(random() * 4); i > 0; i--) context[pick(random, texts)] = pick(random, texts);
  return create(AlertNewSchema, {
    alertId: random() < 0.5 ? "" : pick(random, [randomUuid(random), "custom-id", "ü"]),
    severity: pick(random, [0, 1, 2, 3, 4, 7, -1]),
    source: pick(random, texts),
    name: pick(random, texts),
    context,
    eventTimeUnixMs:
      random() < 0.5 ? pick(random, times) : BigInt.asIntN(64, BigInt(Math.floor(random() * 2 ** 53)) << 11n),
    schemaVersion: pick(random, [0, 1, 2, 300, 4294967295]),
    scope: pick(random, ["", "shared:ops", `client:${randomUuid(random)}`, ...texts]),
  });
}

/** Fields AlertNew does not know (numbers >= 14), of every wire type, including a nested group. */
function unknownFields(random: () => number): Uint8Array {
  const writer = new BinaryWriter();
  for (let i = Math.floor(random() * 4); i > 0; i--) {
    const fieldNumber = 16 + Math.floor(random() * 2000);
    switch (Math.floor(random() * 5)) {
      case 0:
        writer.tag(fieldNumber, WireType.Varint).int64(-5n);
        break;
      case 1:
        writer.tag(fieldNumber, WireType.Bit64).fixed64(123n);
        break;
      case 2:
        writer.tag(fieldNumber, WireType.LengthDelimited).string(pick(random, texts));
        break;
      case 3:
        writer.tag(fieldNumber, WireType.Bit32).fixed32(7);
        break;
      default:
        writer.tag(fieldNumber, WireType.StartGroup);
        writer.tag(11, WireType.StartGroup).tag(12, WireType.Varint).uint32(1).tag(11, WireType.EndGroup);
        writer.tag(fieldNumber, WireType.EndGroup);
    }
  }
  return writer.finish();
}

function randomAlertBytes(random: () => number): Uint8Array {
  const parts = [toBinary(AlertNewSchema, randomAlert(random)), unknownFields(random)];
  // A second message appended: parsers must merge, the later singular fields winning.
  if (random() < 0.2) parts.push(toBinary(AlertNewSchema, randomAlert(random)));
  return Buffer.concat(parts);
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function unstorable(raw: Uint8Array): boolean {
  try {
    return textProblem(strictUtf8.decode(raw)) !== undefined;
  } catch {
    return true;
  }
}

/**
 * Whether any AlertNew string, in any occurrence, context keys and values included, is one Postgres
 * cannot store (NUL or invalid UTF-8), read with the library's reader rather than wire.ts's.
 */
function hasUnstorableText(bytes: Uint8Array): boolean {
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [fieldNumber, wireType] = reader.tag();
    if (wireType !== WireType.LengthDelimited || ![1, 3, 4, 5].includes(fieldNumber)) {
      reader.skip(wireType);
    } else if (fieldNumber !== 5) {
      if (unstorable(reader.bytes())) return true;
    } else {
      const entry = new BinaryReader(reader.bytes());
      while (entry.pos < entry.len) {
        const [entryField, entryWireType] = entry.tag();
        if (entryWireType !== WireType.LengthDelimited || (entryField !== 1 && entryField !== 2))
          entry.skip(entryWireType);
        else if (unstorable(entry.bytes())) return true;
      }
    }
  }
  return false;
}

describe("readAlertNew", () => {
  test("equals fromBinary on 3000 random messages, and refuses exactly those with unstorable text", () => {
    const random = prng(42);
    let refused = 0;
    for (let i = 0; i < 3000; i++) {
      const bytes = randomAlertBytes(random);
      const want = fromBinary(AlertNewSchema, bytes);
      if (hasUnstorableText(bytes)) {
        refused++;
        expect(() => readAlertNew(bytes)).toThrow(/contains a NUL character/);
        continue;
      }
      expect(readAlertNew(bytes)).toEqual({
        alertId: want.alertId,
        severity: want.severity,
        source: want.source,
        name: want.name,
        eventTimeUnixMs: want.eventTimeUnixMs,
        schemaVersion: want.schemaVersion,
        scope: want.scope,
      });
    }
    // Both paths are exercised.
    expect(refused).toBeGreaterThan(300);
    expect(refused).toBeLessThan(2700);
  });

  test("every truncation of a message is rejected exactly when fromBinary rejects it or its text is unstorable", () => {
    const random = prng(7);
    for (let i = 0; i < 200; i++) {
      const bytes = randomAlertBytes(random);
      for (let end = 0; end < bytes.length; end++) {
        const prefix = bytes.subarray(0, end);
        let fastError: unknown;
        let referenceFailed = false;
        try {
          readAlertNew(prefix);
        } catch (e) {
          fastError = e;
        }
        try {
          fromBinary(AlertNewSchema, prefix);
          referenceFailed = hasUnstorableText(prefix);
        } catch {
          referenceFailed = true;
        }
        if (fastError !== undefined) expect(fastError).toBeInstanceOf(WireError);
        expect({ end, failed: fastError !== undefined }).toEqual({ end, failed: referenceFailed });
      }
    }
  });

  const malformed: [string, number[], string][] = [
    ["truncated varint", [0x10, 0x80], "severity: truncated varint"],
    ["length past the end", [0x1a, 0x05, 0x61], "source: length 5 runs past the end (1 bytes left)"],
    ["wrong wire type for a known field", [0x12, 0x00], "severity: wire type 2, expected 0"],
    ["fixed-width wire type for a string", [0x25, 0, 0, 0, 0], "name: wire type 5, expected 2"],
    ["invalid wire type", [0x0f], "AlertNew: invalid wire type 7 at byte 1"],
    ["field number 0", [0x00], "AlertNew: field number 0 at byte 1"],
    [
      "varint over 10 bytes",
      [0x30, ...Array(10).fill(0xff), 0x01],
      "event_time_unix_ms: varint longer than 10 bytes",
    ],
    ["unknown field truncated", [0xd0, 0x02, 0x80], "AlertNew: truncated varint"],
    ["unterminated group", [0xd3, 0x02], "AlertNew: group without an end"],
    ["end group without start", [0xd4, 0x02], "AlertNew: end-group tag without a start"],
    ["field 8 in AlertNew", [0x42, 0x00], "AlertNew: field 8 is reserved for AlertMatched"],
    ["field 9 in AlertNew", [0x4a, 0x00], "AlertNew: field 9 is reserved for AlertMatched"],
    // A producer's own silenced_by would reach the aggregator as if the evaluator had set it.
    ["field 13 in AlertNew", [0x6a, 0x00], "AlertNew: field 13 is reserved for AlertMatched"],
    ["field 14 in AlertNew", [0x72, 0x00], "AlertNew: field 14 is reserved for AlertMatched"],
    ["field 15 in AlertNew", [0x7a, 0x00], "AlertNew: field 15 is reserved for AlertMatched"],
    ["scope as a varint", [0x50, 0x01], "scope: wire type 0, expected 2"],
  ];
  for (const [description, bytes, message] of malformed) {
    test(`rejects ${description}`, () => {
      expect(() => readAlertNew(new Uint8Array(bytes))).toThrow(WireError);
      expect(() => readAlertNew(new Uint8Array(bytes))).toThrow(message);
    });
  }

  const alert = (fields: Partial<Omit<AlertNew, "$typeName" | "$unknown">>) =>
    toBinary(AlertNewSchema, create(AlertNewSchema, { alertId: "id", source: "s", name: "n", ...fields }));
  const utf8 = (text: string) => Array.from(new TextEncoder().encode(text));
  /** A surrogate code point in UTF-8 form (CESU-8 style): what an unpaired surrogate becomes on the wire. */
  const loneSurrogate = [0xed, 0xa0, 0x80];
  const contextEntry = (key: number[], value: number[]) => {
    const entry = [0x0a, key.length, ...key, 0x12, value.length, ...value];
    return [0x2a, entry.length, ...entry];
  };

  const unstorableText: [string, Uint8Array, string, string][] = [
    ["NUL in alert_id", alert({ alertId: "a\u0000b" }), "alert_id", "contains a NUL character at position 1"],
    ["NUL in source", alert({ source: "\u0000" }), "source", "contains a NUL character at position 0"],
    ["NUL in name", alert({ name: "cpu\u0000" }), "name", "contains a NUL character at position 3"],
    [
      "NUL in a context value, named by its key",
      alert({ context: { host: "db-1", db_password: "hunter\u00002" } }),
      "context.db_password",
      "contains a NUL character at position 6",
    ],
    [
      "NUL in a context key",
      alert({ context: { "k\u0000": "v" } }),
      "context",
      "a key contains a NUL character at position 1",
    ],
    [
      "an unpaired surrogate in name",
      new Uint8Array([0x22, 3, ...loneSurrogate]),
      "name",
      "is not valid UTF-8 (an unpaired surrogate or a malformed byte sequence)",
    ],
    [
      "an unpaired surrogate in a context value",
      new Uint8Array(contextEntry(utf8("note"), [0x61, ...loneSurrogate])),
      "context.note",
      "is not valid UTF-8 (an unpaired surrogate or a malformed byte sequence)",
    ],
    [
      "a NUL value before its key",
      new Uint8Array([0x2a, 8, 0x12, 1, 0x00, 0x0a, 3, ...utf8("key")]),
      "context.key",
      "contains a NUL character at position 0",
    ],
    [
      "NUL in an earlier occurrence a later one overrides (the bytes are forwarded)",
      Buffer.concat([alert({ name: "\u0000" }), alert({ name: "ok" })]),
      "name",
      "contains a NUL character at position 0",
    ],
  ];
  for (const [description, bytes, field, reason] of unstorableText) {
    test(`refuses ${description}`, () => {
      let error: unknown;
      try {
        readAlertNew(bytes);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(WireError);
      expect({ field: (error as WireError).field, reason: (error as WireError).reason }).toEqual({
        field,
        reason,
      });
    });
  }

  test("accepts empty context values, NUL bytes outside strings and in unknown fields, and any valid UTF-8", () => {
    const accepted = [
      alert({ context: { empty: "", "": "empty key" } }),
      alert({ severity: 0, eventTimeUnixMs: 256n, schemaVersion: 0 }),
      Buffer.concat([alert({}), new Uint8Array([0xa2, 0x06, 2, 0x00, 0x00])]),
      alert({ name: "Zürich ☃ 🔥", context: { ключ: "𝔘𝔫𝔦" } }),
    ];
    for (const bytes of accepted) expect(() => readAlertNew(bytes)).not.toThrow();
  });
});

describe("encodeAlertMatched", () => {
  test("fromBinary of the fast encoding equals the message built with create, on 3000 random alerts", () => {
    const random = prng(99);
    for (let i = 0; i < 3000; i++) {
      const bytes = randomAlertBytes(random);
      if (hasUnstorableText(bytes)) continue; // refused before it could be encoded
      const alert = fromBinary(AlertNewSchema, bytes);
      const header = readAlertNew(bytes);
      const derived =
        header.alertId === ""
          ? deriveAlertId(header.severity, header.source, header.name, header.eventTimeUnixMs)
          : undefined;
      const group = {
        clientId: randomUuid(random),
        ruleIds: Array.from({ length: 1 + Math.floor(random() * 5) }, () => randomUuid(random)),
      };
      const got = fromBinary(AlertMatchedSchema, encodeAlertMatched(bytes, derived, group));
      const want = create(AlertMatchedSchema, {
        alertId: derived ?? alert.alertId,
        severity: alert.severity,
        source: alert.source,
        name: alert.name,
        context: alert.context,
        eventTimeUnixMs: alert.eventTimeUnixMs,
        schemaVersion: alert.schemaVersion,
        clientId: group.clientId,
        ruleIds: group.ruleIds,
        scope: alert.scope,
      });
      if (!equals(AlertMatchedSchema, got, want)) expect(got).toEqual(want);
    }
  });

  test("appendField adds silenced_by and changes nothing else", () => {
    const random = prng(7);
    for (let i = 0; i < 300; i++) {
      const bytes = randomAlertBytes(random);
      const group = { clientId: randomUuid(random), ruleIds: [randomUuid(random)] };
      const matched = encodeAlertMatched(bytes, undefined, group);
      const silenceId = randomUuid(random);
      const silenced = fromBinary(AlertMatchedSchema, appendField(matched, MATCHED_SILENCED_BY, silenceId));
      expect(silenced.silencedBy).toBe(silenceId);
      const plain = fromBinary(AlertMatchedSchema, matched);
      expect(plain.silencedBy).toBe("");
      expect(equals(AlertMatchedSchema, { ...silenced, silencedBy: "" }, plain)).toBe(true);
    }
  });

  test("appendField adds policy and muted_by_rule after silenced_by, each decoded as given", () => {
    const random = prng(8);
    const policy = create(DeliveryPolicySchema, {
      skipResolved: true,
      repeatIntervalMs: 60_000n,
      groupBy: ["source", "team"],
      groupWaitMs: 0n,
      groupAlertsMax: 5,
    });
    for (let i = 0; i < 100; i++) {
      const group = { clientId: randomUuid(random), ruleIds: [randomUuid(random)] };
      const matched = encodeAlertMatched(randomAlertBytes(random), undefined, group);
      const ruleId = randomUuid(random);
      const withPolicy = appendField(matched, MATCHED_POLICY, toBinary(DeliveryPolicySchema, policy));
      const got = fromBinary(AlertMatchedSchema, appendField(withPolicy, MATCHED_MUTED_BY_RULE, ruleId));
      expect(got.mutedByRule).toBe(ruleId);
      expect(got.policy && equals(DeliveryPolicySchema, got.policy, policy)).toBe(true);
      expect(got.policy?.groupIntervalMs).toBeUndefined();
      const plain = fromBinary(AlertMatchedSchema, matched);
      expect(equals(AlertMatchedSchema, { ...got, policy: undefined, mutedByRule: "" }, plain)).toBe(true);
    }
  });

  test("the client suffix is computed once per group", () => {
    const group = { clientId: "c", ruleIds: ["r1", "r2"] };
    expect(clientSuffix(group)).toBe(clientSuffix(group));
    expect(clientSuffix({ ...group })).toEqual(clientSuffix(group));
  });
});
