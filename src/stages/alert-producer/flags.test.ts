import { describe, expect, test } from "bun:test";
import { FlagError, parseLoadFlags } from "./flags.ts";

const defaults = { brokers: "broker:9092", seed: 99, runId: "run", ingestCredential: "ik_secret" };
const parse = (...args: string[]) => parseLoadFlags(args, defaults);

/** The FlagError `args` provoke, as "flag: reason". */
function failure(...args: string[]): FlagError {
  try {
    parse(...args);
  } catch (error) {
    if (error instanceof FlagError) return error;
    throw error;
  }
  throw new Error(`no error for ${args.join(" ")}`);
}

describe("parseLoadFlags", () => {
  test("every flag, in both --flag value and --flag=value form", () => {
    const options = parse(
      "--rate=2000",
      "--count",
      "500",
      "--burst",
      "50",
      "--severities",
      "high:3,LOW:1",
      "--sources=api:5,db:1",
      "--names",
      "cpu,disk:2",
      "--seed",
      "7",
      "--run-id",
      "r1",
      "--context",
      "env=load,query=a=b",
      "--hashed-ids",
      "--topic",
      "t",
      "--brokers",
      "b:1",
      "--scope",
      "client:0123abcd-0000-4000-8000-00000000000f",
    );
    expect(options).toEqual({
      ratePerS: 2000,
      count: 500,
      burstMax: 50,
      severities: [
        { value: 3, weight: 3 },
        { value: 1, weight: 1 },
      ],
      sources: [
        { value: "api", weight: 5 },
        { value: "db", weight: 1 },
      ],
      names: [
        { value: "cpu", weight: 1 },
        { value: "disk", weight: 2 },
      ],
      seed: 7,
      runId: "r1",
      context: { env: "load", query: "a=b" },
      hashedIds: true,
      scope: "client:0123abcd-0000-4000-8000-00000000000f",
      topic: "t",
      brokers: "b:1",
      ingest: undefined,
    });
  });

  test("--ingest sends through ingest with the credential from the environment", () => {
    expect(parse("--count", "1", "--ingest", "http://127.0.0.1:8081").ingest).toEqual({
      url: "http://127.0.0.1:8081",
      credential: "ik_secret",
    });
    expect(() =>
      parseLoadFlags(["--count", "1", "--ingest", "http://h"], { ...defaults, ingestCredential: undefined }),
    ).toThrow("--ingest: needs the ingest credential in INGEST_CREDENTIAL");
  });

  test("defaults", () => {
    const options = parse("--count", "10");
    expect(options.ratePerS).toBe(1000);
    expect(options.burstMax).toBe(50);
    expect(options.severities.map((s) => s.value)).toEqual([1, 2, 3, 4]);
    expect(options.sources.map((s) => s.value)).toEqual(["api", "db", "web"]);
    expect(options).toMatchObject({ seed: 99, runId: "run", topic: "alerts.new", brokers: "broker:9092" });
    expect(options.hashedIds).toBe(false);
    expect(options.context).toEqual({});
    expect(options.scope).toBe("");
    expect(options.ingest).toBeUndefined();
  });

  test("--duration becomes rate x seconds alerts, --forever an endless run", () => {
    expect(parse("--rate", "200", "--duration", "2.5").count).toBe(500);
    expect(parse("--forever").count).toBe(Number.POSITIVE_INFINITY);
  });

  test("a weight follows the last colon, so values may contain colons", () => {
    expect(parse("--count", "1", "--sources", "db:5432:2").sources).toEqual([
      { value: "db:5432", weight: 2 },
    ]);
  });

  test("a context key named __proto__ stays a plain label", () => {
    const { context } = parse("--count", "1", "--context", "__proto__=x");
    expect(Object.keys(context)).toEqual(["__proto__"]);
    expect(Object.getPrototypeOf(context)).toBe(Object.prototype);
  });

  test.each([
    [["--rate", "fast", "--count", "1"], "--rate", "expected a number"],
    [["--rate", "0", "--count", "1"], "--rate", "must be within"],
    [["--rate", "0x10", "--count", "1"], "--rate", "expected a number"],
    [["--rate", "1000"], "--count", "one of --count, --duration or --forever is required"],
    [["--count", "1", "--forever"], "--forever", "cannot be combined with --count"],
    [["--count", "1.5"], "--count", "expected an integer"],
    [["--count"], "--count", "needs a value"],
    [["--count", "1", "--count", "2"], "--count", "given more than once"],
    [["--count", "1", "--severities", "HIGH:3,URGENT"], "--severities", 'unknown severity "URGENT"'],
    [["--count", "1", "--sources", "api:-1"], "--sources", "must be a positive number"],
    [["--count", "1", "--sources", "api:"], "--sources", "must be a positive number"],
    [["--count", "1", "--names", "cpu,cpu"], "--names", "listed twice"],
    [["--count", "1", "--names", ",cpu"], "--names", "empty value"],
    [["--count", "1", "--seed", "-1"], "--seed", "must be within"],
    [["--count", "1", "--context", "novalue"], "--context", "expected key=value"],
    [["--count", "1", "--run-id", "a b"], "--run-id", "expected 1-64 characters"],
    [["--count", "1", "--burst", "0"], "--burst", "must be within"],
    [["--count", "1", "--hashed-ids=yes"], "--hashed-ids", "takes no value"],
    [["--count", "1", "--speed", "3"], "--speed", "unknown flag"],
    [["--count", "1", "extra"], "extra", "unexpected argument"],
    [["--rate", "1", "--duration", "0.1"], "--duration", "less than one alert"],
    [["--count", "1", "--scope", "acme"], "--scope", "expected client:<client id> or shared:<name>"],
    [["--count", "1", "--scope", "shared:Acme"], "--scope", "expected client:"],
    [["--count", "1", "--scope", "client:not-a-uuid"], "--scope", "expected client:"],
    [["--count", "1", "--ingest", "ftp://h"], "--ingest", "expected an http(s) URL"],
    [
      ["--count", "1", "--ingest", "http://h", "--scope", "shared:a"],
      "--scope",
      "cannot be combined with --ingest",
    ],
    [["--count", "1", "--ingest", "http://h", "--topic", "t"], "--topic", "cannot be combined with --ingest"],
  ])("%p fails naming %s", (args, flag, reason) => {
    const error = failure(...args);
    expect(error.flag).toBe(flag);
    expect(error.message).toStartWith(`${flag}: `);
    expect(error.message).toContain(reason);
  });
});
