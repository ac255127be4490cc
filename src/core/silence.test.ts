import { describe, expect, test } from "bun:test";
import {
  alertLabels,
  compileMatcher,
  type Matcher,
  parseMatcherList,
  parseMatchers,
  parseMatcherText,
  SilenceBook,
  silenceLimits,
  silenceMatches,
  silenceMatchesFilter,
  silenceState,
} from "./silence.ts";

const labels = alertLabels({
  severity: 4,
  source: "db-1",
  name: "DiskFull",
  context: {
    env: "prod-eu",
    mount: "/var",
    "annotation.summary": "disk full",
    generatorURL: "http://prometheus/graph",
    empty: "",
  },
});

describe("alertLabels", () => {
  test("alertname, lower-case severity, source and the context entries that are label names", () => {
    expect(Object.fromEntries(labels)).toEqual({
      alertname: "DiskFull",
      severity: "critical",
      source: "db-1",
      env: "prod-eu",
      mount: "/var",
      empty: "",
    });
  });

  test("name and source win over context entries; a severity ingest kept as sent wins over ours", () => {
    const own = alertLabels({
      severity: 2,
      source: "s",
      name: "n",
      context: { alertname: "x", severity: "none", source: "x" },
    });
    expect(Object.fromEntries(own)).toEqual({ alertname: "n", severity: "none", source: "s" });
  });
});

describe("silenceMatches: every matcher must match, a missing label is empty", () => {
  // [matchers in Alertmanager's text form, whether the silence matches the alert above]
  const cases: [string[], boolean][] = [
    [["alertname=DiskFull"], true],
    [['alertname="DiskFull"'], true],
    [["alertname=diskfull"], false],
    [["severity=critical"], true],
    [["severity=CRITICAL"], false],
    [["severity=~CRIT.*"], false],
    [['severity=~"(?i)CRIT.*"'], true],
    [["source=db-1", "env=prod-eu"], true],
    [["source=db-1", "env=prod-us"], false],
    [["env=~prod-.*"], true],
    [["env=~prod"], false], // anchored: a prefix is not a match
    [["env=~.*eu"], true],
    [["env!=staging"], true],
    [["env!=prod-eu"], false],
    [["env!~prod-.*"], false],
    [["env!~staging|dev"], true],
    [["team=ops"], false],
    [['team=""'], true],
    [["team!=ops"], true],
    [["team=~ops|"], true],
    [["empty=", "alertname=DiskFull"], true],
    [["summary=~.+"], false], // annotations are not labels
    [["generatorURL=~.+"], false],
    [["mount=/var", "alertname=~Disk.*", "severity!~low|medium"], true],
  ];
  test.each(cases)("%p -> %p", (texts, expected) => {
    const compiled = texts.map((text) => compileMatcher(parseMatcherText(text)));
    expect(silenceMatches(compiled, labels)).toBe(expected);
  });
});

describe("parseMatcherList: a list in the text form", () => {
  test("braces optional, commas inside quoted values kept, escaped quotes kept", () => {
    const expected = [
      { name: "severity", value: "HIGH", isRegex: false, isEqual: true },
      { name: "source", value: 'db-1,"x"', isRegex: true, isEqual: false },
    ];
    expect(parseMatcherList('{severity="HIGH", source!~"db-1,\\"x\\""}')).toEqual(expected);
    expect(parseMatcherList('severity=HIGH,source!~"db-1,\\"x\\"",')).toEqual(expected);
  });

  test("refused: empty, too many, a bad matcher, an unterminated quote", () => {
    expect(() => parseMatcherList("{}")).toThrow("at least one matcher");
    const many = Array.from({ length: silenceLimits.matchersMax + 1 }, (_, i) => `a${i}=b`).join(",");
    expect(() => parseMatcherList(many)).toThrow("at most");
    expect(() => parseMatcherList("a=b,nope")).toThrow("bad matcher format");
    expect(() => parseMatcherList('a="b,c=d')).toThrow("unescaped double quote");
  });
});

describe("parseMatcherText: Alertmanager's text form", () => {
  const cases: [string, Matcher][] = [
    ["a=b", { name: "a", value: "b", isRegex: false, isEqual: true }],
    [' a = "b c" ', { name: "a", value: "b c", isRegex: false, isEqual: true }],
    ["a!=b", { name: "a", value: "b", isRegex: false, isEqual: false }],
    ['a=~"x|y"', { name: "a", value: "x|y", isRegex: true, isEqual: true }],
    ["a!~x.*", { name: "a", value: "x.*", isRegex: true, isEqual: false }],
    ['a="say \\"hi\\"\\n"', { name: "a", value: 'say "hi"\n', isRegex: false, isEqual: true }],
    ['a="\\d"', { name: "a", value: "\\d", isRegex: false, isEqual: true }],
    ["a=", { name: "a", value: "", isRegex: false, isEqual: true }],
  ];
  test.each(cases)("%p", (text, expected) => expect(parseMatcherText(text)).toEqual(expected));

  const bad: [string, string][] = [
    ["nope", "bad matcher format"],
    ["1a=b", "bad matcher format"],
    ['a="b', "unescaped double quote"],
    ['a=b"c', "unescaped double quote"],
    ["a=~(", "invalid regular expression"],
    ["a=b\u0000", "NUL"],
    [`a=${"x".repeat(2000)}`, "longer than"],
  ];
  test.each(bad)("%p is refused: %p", (text, reason) => expect(() => parseMatcherText(text)).toThrow(reason));
});

describe("parseMatchers: the API's matchers, every bad field named", () => {
  const ok = { name: "alertname", value: "x", isRegex: false, isEqual: true };
  const cases: [string, unknown, [string, string][]][] = [
    ["valid", [ok], []],
    ["isEqual defaults to true", [{ name: "a", value: "x", isRegex: false }], []],
    [
      "not an array",
      { name: "a" },
      [["matchers", "required: an array of matchers {name, value, isRegex, isEqual}"]],
    ],
    ["empty", [], [["matchers", "at least one matcher required"]]],
    [
      "too many",
      Array.from({ length: silenceLimits.matchersMax + 1 }, () => ok),
      [["matchers", `at most ${silenceLimits.matchersMax} matchers`]],
    ],
    [
      "not an object",
      ["a=b"],
      [["matchers[0]", "expected a matcher object {name, value, isRegex, isEqual}"]],
    ],
    ["unknown field", [{ ...ok, extra: 1 }], [["matchers[0].extra", "unknown field"]]],
    [
      "__proto__ field",
      [JSON.parse('{"name":"a","value":"x","isRegex":false,"__proto__":{}}')],
      [["matchers[0].__proto__", "unknown field"]],
    ],
    [
      "bad name",
      [{ ...ok, name: "a-b" }],
      [["matchers[0].name", expect.stringContaining("invalid label name")]],
    ],
    ["missing isRegex", [{ name: "a", value: "x" }], [["matchers[0].isRegex", "required: true or false"]]],
    ["string isEqual", [{ ...ok, isEqual: "true" }], [["matchers[0].isEqual", "expected true or false"]]],
    ["number value", [{ ...ok, value: 1 }], [["matchers[0].value", "required: a string"]]],
    [
      "NUL value",
      [{ ...ok, value: "a\u0000" }],
      [["matchers[0].value", "contains a NUL character at position 1"]],
    ],
    [
      "lone surrogate",
      [{ ...ok, value: "\ud800" }],
      [["matchers[0].value", "contains an unpaired surrogate at position 0"]],
    ],
    [
      "oversized value",
      [{ ...ok, value: "x".repeat(silenceLimits.valueLengthMax + 1) }],
      [["matchers[0].value", `longer than ${silenceLimits.valueLengthMax} characters`]],
    ],
    [
      "bad regex",
      [{ ...ok, value: "(a", isRegex: true }],
      [["matchers[0].value", "invalid regular expression: missing closing ) at position 0"]],
    ],
    [
      "only matchers that match everything",
      [
        { name: "a", value: ".*", isRegex: true },
        { name: "b", value: "", isRegex: false },
      ],
      [["matchers", "at least one matcher must not match the empty string"]],
    ],
  ];
  test.each(cases)("%s", (_, input, expected) => {
    expect(parseMatchers(input).problems).toEqual(expected as [string, string][]);
  });
});

describe("silenceMatchesFilter: Alertmanager's filter on silences", () => {
  const silence: Matcher[] = [
    { name: "alertname", value: "DiskFull", isRegex: false, isEqual: true },
    { name: "env", value: "prod.*", isRegex: true, isEqual: true },
  ];
  const cases: [string[], boolean][] = [
    [[], true],
    [["alertname=DiskFull"], true],
    [["alertname=~Disk.*"], true],
    [["alertname=Other"], false],
    [['env="prod.*"'], true], // against the silence's pattern text, not a label value
    [["team=x"], false],
    [["alertname=DiskFull", "env=prod"], false],
  ];
  test.each(cases)("%p -> %p", (filter, expected) => {
    expect(
      silenceMatchesFilter(
        silence,
        filter.map((text) => compileMatcher(parseMatcherText(text))),
      ),
    ).toBe(expected);
  });
});

describe("silenceState", () => {
  const cases: [number, "pending" | "active" | "expired"][] = [
    [99, "pending"],
    [100, "active"],
    [150, "active"],
    [200, "active"],
    [201, "expired"],
  ];
  test.each(cases)("at %p: %p", (nowMs, state) => expect(silenceState(100, 200, nowMs)).toBe(state));
});

describe("SilenceBook: the evaluator's question, per client and time", () => {
  const matcher = (name: string, value: string, isRegex = false): Matcher => ({
    name,
    value,
    isRegex,
    isEqual: true,
  });
  const book = new SilenceBook([
    {
      id: "s-active",
      clientId: "a",
      startsAtMs: 100,
      endsAtMs: 200,
      matchers: [matcher("alertname", "DiskFull")],
    },
    {
      id: "s-later",
      clientId: "a",
      startsAtMs: 300,
      endsAtMs: 400,
      matchers: [matcher("severity", "critical")],
    },
    { id: "s-b", clientId: "b", startsAtMs: 0, endsAtMs: 1000, matchers: [matcher("source", "db-.*", true)] },
  ]);
  // [client, time, silence expected for the alert above (DiskFull, critical, db-1)]
  const cases: [string, number, string | undefined][] = [
    ["a", 150, "s-active"],
    ["a", 99, undefined],
    ["a", 250, undefined],
    ["a", 350, "s-later"],
    ["a", 401, undefined],
    ["b", 500, "s-b"],
    ["c", 150, undefined],
  ];
  test.each(cases)("client %p at %p: %p", (clientId, nowMs, expected) => {
    expect(book.silencedBy(clientId, labels, nowMs)).toBe(expected);
  });

  test("has: only clients with open silences", () => {
    expect([book.has("a"), book.has("b"), book.has("c")]).toEqual([true, true, false]);
  });
});
