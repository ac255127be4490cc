import { describe, expect, test } from "bun:test";
import { textProblem } from "./text.ts";

describe("textProblem", () => {
  test.each([
    ["plain ASCII", "disk full"],
    ["empty", ""],
    ["non-BMP pair", "fire \u{1F525}"],
    ["accented", "Zürich"],
  ])("accepts %s", (_, value) => expect(textProblem(value)).toBeUndefined());

  test.each([
    ["a NUL", "a\u0000b", "contains a NUL character at position 1"],
    ["a lone high surrogate at the end", "x\ud83d", "contains an unpaired surrogate at position 1"],
    ["a lone low surrogate", "\udc00x", "contains an unpaired surrogate at position 0"],
    ["two high surrogates", "\ud83d\ud83d\udd25", "contains an unpaired surrogate at position 0"],
  ])("refuses %s", (_, value, reason) => expect(textProblem(value)).toBe(reason));
});
