import { describe, expect, test } from "bun:test";
import { create, equals, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { pick, prng, randomUuid } from "../../test/support/random-rules.ts";
import { AlertMatchedSchema, type AlertNew, AlertNewSchema } from "../gen/alerting/v1/alert_pb.ts";
import { deriveAlertId } from "./alert-id.ts";
import { appendSilencedBy, clientSuffix, encodeAlertMatched, readAlertNew, WireError } from "./wire.ts";

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

/** Fields AlertNew does not know (numbers >= 12), of every wire type, including a nested group. */
function unknownFields(random: () => number): Uint8Array {
  const writer = new BinaryWriter();
  for (let i = Math.floor(random() * 4); i > 0; i--) {
    const fieldNumber = 12 + Math.floor(random() * 2000);
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

describe("readAlertNew", () => {
  test("equals fromBinary on 3000 random messages", () => {
    const random = prng(42);
    for (let i = 0; i < 3000; i++) {
      const bytes = randomAlertBytes(random);
      const want = fromBinary(AlertNewSchema, bytes);
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
  });

  test("every truncation of a message is rejected exactly when fromBinary rejects it", () => {
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
    ["field 11 in AlertNew", [0x5a, 0x00], "AlertNew: field 11 is reserved for AlertMatched"],
    ["scope as a varint", [0x50, 0x01], "scope: wire type 0, expected 2"],
  ];
  for (const [description, bytes, message] of malformed) {
    test(`rejects ${description}`, () => {
      expect(() => readAlertNew(new Uint8Array(bytes))).toThrow(WireError);
      expect(() => readAlertNew(new Uint8Array(bytes))).toThrow(message);
    });
  }
});

describe("encodeAlertMatched", () => {
  test("fromBinary of the fast encoding equals the message built with create, on 3000 random alerts", () => {
    const random = prng(99);
    for (let i = 0; i < 3000; i++) {
      const bytes = randomAlertBytes(random);
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

  test("appendSilencedBy adds silenced_by and changes nothing else", () => {
    const random = prng(7);
    for (let i = 0; i < 300; i++) {
      const bytes = randomAlertBytes(random);
      const group = { clientId: randomUuid(random), ruleIds: [randomUuid(random)] };
      const matched = encodeAlertMatched(bytes, undefined, group);
      const silenceId = randomUuid(random);
      const silenced = fromBinary(AlertMatchedSchema, appendSilencedBy(matched, silenceId));
      expect(silenced.silencedBy).toBe(silenceId);
      const plain = fromBinary(AlertMatchedSchema, matched);
      expect(plain.silencedBy).toBe("");
      expect(equals(AlertMatchedSchema, { ...silenced, silencedBy: "" }, plain)).toBe(true);
    }
  });

  test("the client suffix is computed once per group", () => {
    const group = { clientId: "c", ruleIds: ["r1", "r2"] };
    expect(clientSuffix(group)).toBe(clientSuffix(group));
    expect(clientSuffix({ ...group })).toEqual(clientSuffix(group));
  });
});
