import { describe, expect, test } from "bun:test";
import { compileLinearRegex, programSizeMax, RegexSyntaxError } from "./linear-regex.ts";

const matches = (pattern: string, text: string) => compileLinearRegex(pattern).matches(text);

describe("whole-string matching with Go's syntax", () => {
  // [pattern, text, Go's `^(?:pattern)$` result]
  const cases: [string, string, boolean][] = [
    ["", "", true],
    ["", "a", false],
    ["abc", "abc", true],
    ["abc", "abcd", false],
    ["abc", "xabc", false],
    ["a|b", "b", true],
    ["a|b", "ab", false],
    ["ab|", "", true],
    ["a.c", "abc", true],
    ["a.c", "a\nc", false],
    ["(?s)a.c", "a\nc", true],
    ["a*", "", true],
    ["a*", "aaaa", true],
    ["a+", "", false],
    ["a?b", "b", true],
    ["a{2}", "aa", true],
    ["a{2}", "aaa", false],
    ["a{2,}", "aaaaa", true],
    ["a{2,3}", "aaaa", false],
    ["a{,3}", "a{,3}", true],
    ["a{", "a{", true],
    ["a*?b", "aab", true],
    ["(ab)+", "ababab", true],
    ["(?:ab)+", "ababa", false],
    ["(?P<name>a)b", "ab", true],
    ["[a-c]+", "abcabc", true],
    ["[a-c]+", "abcd", false],
    ["[^a-c]", "d", true],
    ["[^a-c]", "a", false],
    ["[^a]", "\n", true],
    ["[]a]+", "]a]", true],
    ["[a-]+", "a-", true],
    ["[[:alpha:]]+", "abcXYZ", true],
    ["[[:^digit:]]", "5", false],
    ["[\\d.]+", "10.0.0.1", true],
    ["\\d+", "123", true],
    ["\\D", "1", false],
    ["\\w+", "db_1", true],
    ["\\s", " ", true],
    ["\\S", " ", false],
    ["(?i)CRITICAL", "critical", true],
    ["(?i:a)b", "Ab", true],
    ["(?i:a)b", "AB", false],
    ["(?i)[a-c]", "B", true],
    ["(?i)[^a]", "A", false],
    ["a(?i)b|c", "C", true],
    ["(?i)a(?-i)b", "Ab", true],
    ["(?i)a(?-i)b", "AB", false],
    ["^abc$", "abc", true],
    ["a^b", "ab", false],
    ["a$", "a", true],
    ["(?m)a$\\n^b", "a\nb", true],
    ["\\Aa\\z", "a", true],
    ["a\\bb", "ab", false],
    ["a\\b-", "a-", true],
    ["a\\Bb", "ab", true],
    ["\\.", ".", true],
    ["\\.", "x", false],
    ["\\Qa.b\\E", "a.b", true],
    ["\\Qa.b\\E", "axb", false],
    ["\\x41", "A", true],
    ["\\x{263a}", "☺", true],
    ["\\101", "A", true],
    ["\\t", "\t", true],
    ["é+", "éé", true],
    [".", "😀", true],
    ["(a*)*", "aaa", true],
    ["(a*)*b", "aaa", false],
    ["(|a)+", "aa", true],
    ["x{0}y", "y", true],
    ["prod-.*", "prod-eu-1", true],
    ["prod-.*", "staging", false],
    ["web|db", "web", true],
  ];
  test.each(cases)("%p against %p is %p", (pattern, text, expected) => {
    expect(matches(pattern, text)).toBe(expected);
  });
});

describe("agrees with JavaScript's RegExp where the two syntaxes agree", () => {
  const patterns = [
    "a*b+c?",
    "(ab|a)(bc|c)",
    "[a-z0-9]{2,4}",
    "(x|y)*z",
    ".*foo.*",
    "(a|ab)(c|bcd)(d*)",
    "[^xyz]+",
    "(?:a{1,2}){2}",
    "(a+|b+)*",
  ];
  const texts = [
    "",
    "a",
    "ab",
    "abc",
    "abcd",
    "abbc",
    "xyz",
    "xxyz",
    "foo",
    "barfoobaz",
    "aaaa",
    "abab",
    "zz",
    "q1",
  ];
  for (const pattern of patterns) {
    test(pattern, () => {
      const reference = new RegExp(`^(?:${pattern})$`);
      for (const text of texts) expect([text, matches(pattern, text)]).toEqual([text, reference.test(text)]);
    });
  }
});

describe("refuses what Go refuses, naming the reason", () => {
  const cases: [string, string][] = [
    ["(a", "missing closing )"],
    ["a)", "unexpected )"],
    ["[a", "missing closing ]"],
    ["*a", "missing argument to repetition operator *"],
    ["{2}", "missing argument to repetition operator {"],
    ["a**", "invalid nested repetition operator"],
    ["a{2}{3}", "invalid nested repetition operator"],
    ["a{1001}", "invalid repeat count"],
    ["a{3,2}", "invalid repeat count"],
    ["[z-a]", "invalid character class range"],
    ["[[:nope:]]", "invalid character class range"],
    ["(a)\\1", "no backreferences"],
    ["\\y", "invalid escape sequence \\y"],
    ["\\x4", "invalid escape sequence \\x"],
    ["(?=a)", "invalid or unsupported Perl syntax"],
    ["(?<!a)", "invalid named capture"],
    ["(?i-)a", "missing flag after -"],
    ["(?)", "missing flags"],
    ["\\pL", "Unicode classes"],
  ];
  test.each(cases)("%p: %p", (pattern, reason) => {
    expect(() => compileLinearRegex(pattern)).toThrow(RegexSyntaxError);
    expect(() => compileLinearRegex(pattern)).toThrow(reason);
  });

  test("a pattern whose program would be too large", () => {
    expect(() => compileLinearRegex("(a{1000}){3}")).toThrow(`more than ${programSizeMax} instructions`);
  });
});

describe("linear time", () => {
  // A backtracking engine needs about 2^5000 steps for the first of these and would hit the test's
  // timeout; the Pike VM needs (program size x text length).
  test("patterns that make a backtracking engine explode finish", () => {
    const text = `${"a".repeat(5000)}!`;
    expect(matches("(a+)+b", text)).toBe(false);
    expect(matches("(a|a)*b", text)).toBe(false);
    expect(matches("(a*)*(a*)*(a*)*c", text)).toBe(false);
    expect(matches("(.*a){20}", "a".repeat(5000))).toBe(true);
  });
});
