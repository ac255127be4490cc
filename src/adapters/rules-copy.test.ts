import { describe, expect, test } from "bun:test";
import { prng, randomRules } from "../../harness/random-rules.ts";
import { copyBytes } from "../../harness/rules-copy.ts";
import type { Rule } from "../core/matching/types.ts";
import { buildSnapshot, encodeSnapshot, SnapshotBuilder } from "../core/snapshot.ts";
import { RuleCopyError, RuleCopyParser } from "./rules-copy.ts";

/** `bytes` cut into pieces of random sizes, many of them a single byte. */
function randomChunks(random: () => number, bytes: Uint8Array): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; ) {
    const size = random() < 0.3 ? 1 : 1 + Math.floor(random() * 80);
    chunks.push(bytes.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

function parse(chunks: readonly Uint8Array[]): SnapshotBuilder {
  const builder = new SnapshotBuilder(1);
  const parser = new RuleCopyParser(builder);
  for (const chunk of chunks) parser.push(chunk);
  parser.end();
  return builder;
}

// What the text format would escape, multi-byte UTF-8, and strings that look like COPY syntax.
const alphabet = [
  "cpu",
  "tab\there",
  "new\nline\r\n",
  "back\\slash",
  "\\N",
  "Zürich ☃",
  "🚨 p1",
  "",
  "x".repeat(200),
];

describe("RuleCopyParser", () => {
  test("builds exactly buildSnapshot's snapshot, however the stream is cut", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const random = prng(seed);
      const rules = randomRules(random, Math.floor(random() * 40), alphabet);
      const expected = buildSnapshot(rules, BigInt(seed), 1_700_000_000_000n);
      const built = parse(randomChunks(random, copyBytes(rules))).build(BigInt(seed), 1_700_000_000_000n);
      expect(built).toEqual(expected);
      expect(new Set(built.strings).size).toBe(built.strings.length);
      expect(encodeSnapshot(built)).toEqual(encodeSnapshot(expected));
    }
  });

  test("skips a header extension and takes one whole chunk", () => {
    const rules = randomRules(prng(7), 25, alphabet);
    const bytes = copyBytes(rules, { flags: 0xffff, extension: new Uint8Array([1, 2, 3, 4, 5]) });
    expect(parse([bytes]).build(1n, 0n)).toEqual(buildSnapshot(rules, 1n, 0n));
  });

  test("every cut before the trailer's end is reported as cut short", () => {
    const bytes = copyBytes(randomRules(prng(3), 3, alphabet));
    for (let end = 0; end < bytes.length; end++) {
      const parser = new RuleCopyParser(new SnapshotBuilder());
      parser.push(bytes.subarray(0, end));
      expect(() => parser.end()).toThrow(RuleCopyError);
      expect(() => parser.end()).toThrow("cut short");
    }
  });

  const rule = randomRules(prng(11), 1, ["s"])[0] as Rule;
  const valid = copyBytes([rule]);
  const rowAt = 19; // after the header without extension
  /** `valid` with its single row replaced by `row` (field count and fields). */
  const withRow = (...row: Uint8Array[]) =>
    Buffer.concat([valid.subarray(0, rowAt), ...row, new Uint8Array([0xff, 0xff])]);
  const field = (text: string) => {
    const bytes = Buffer.from(text, "utf8");
    const length = Buffer.alloc(4);
    length.writeInt32BE(bytes.length);
    return Buffer.concat([length, bytes]);
  };
  const ids = valid.subarray(rowAt + 2, rowAt + 2 + 40); // both uuid fields as sent
  const rejected: [string, Uint8Array, string][] = [
    [
      "another signature",
      Buffer.concat([Buffer.from("PGCOPY\n\xff\r\n\x01", "latin1"), valid.subarray(11)]),
      "signature",
    ],
    ["OIDs in the flags", copyBytes([rule], { flags: 1 << 16 }), "unsupported header flags"],
    [
      "a NULL field",
      withRow(
        new Uint8Array([0, 5]),
        ids,
        field("LOW"),
        new Uint8Array([0xff, 0xff, 0xff, 0xff]),
        field("n"),
      ),
      "field 4 is NULL",
    ],
    [
      "4 fields",
      withRow(new Uint8Array([0, 4]), ids, field("LOW"), field("s")),
      "row 0: 4 fields, expected 5",
    ],
    [
      "an id of 4 bytes",
      withRow(new Uint8Array([0, 5]), field("abcd"), ids.subarray(20), field("LOW"), field("s"), field("n")),
      "16-byte uuid",
    ],
    [
      "severity low",
      withRow(new Uint8Array([0, 5]), ids, field("low"), field("s"), field("n")),
      "unknown severity",
    ],
    ["data after the trailer", Buffer.concat([valid, new Uint8Array([0, 5])]), "data after the trailer"],
  ];
  for (const [description, bytes, reason] of rejected) {
    test(`rejects ${description}`, () => {
      expect(() => parse([bytes])).toThrow(RuleCopyError);
      expect(() => parse([bytes])).toThrow(reason);
    });
  }
});
