import { describe, expect, test } from "bun:test";
import { ConfigError, envInt, envList, envOneOf, envPairs, envString } from "./config.ts";
import { logLevelSetting } from "./log.ts";

/** The ConfigError `read` throws, or undefined. */
function refusal(read: () => unknown): ConfigError | undefined {
  try {
    read();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  return undefined;
}

describe("every setting: unset or empty means the default", () => {
  test.each([[{}], [{ X: "" }]])("env %j", (env) => {
    expect(envString("X", "fallback", env)).toBe("fallback");
    expect(envInt("X", 7, { min: 0, max: 10 }, env)).toBe(7);
    expect(envOneOf("X", "b", ["a", "b"], env)).toBe("b");
    expect(envList("X", env)).toEqual([]);
    expect(logLevelSetting(env)).toBe("info");
  });
});

describe("a set value is used as given, or refused naming the variable and the reason", () => {
  test("strings and lists", () => {
    expect(envString("X", "fallback", { X: "given" })).toBe("given");
    expect(envList("X", { X: " 10.0.0.0/8, ,example.com ," })).toEqual(["10.0.0.0/8", "example.com"]);
  });

  test("integers within bounds", () => {
    expect(envInt("N", 1, { min: 0, max: 10 }, { N: "10" })).toBe(10);
    expect(refusal(() => envInt("N", 1, { min: 0, max: 10 }, { N: "1.5" }))?.message).toBe(
      'N: must be an integer, got "1.5"',
    );
    expect(refusal(() => envInt("N", 1, { min: 0, max: 10 }, { N: "11" }))?.message).toBe(
      "N: must be within 0..10, got 11",
    );
  });

  test("one of a closed list: a typo is refused, not read as the default", () => {
    const modes = ["tls", "starttls", "none"] as const;
    expect(envOneOf("SMTP_SECURITY", "starttls", modes, { SMTP_SECURITY: "tls" })).toBe("tls");
    const typo = refusal(() => envOneOf("SMTP_SECURITY", "starttls", modes, { SMTP_SECURITY: "tsl" }));
    expect(typo?.variable).toBe("SMTP_SECURITY");
    expect(typo?.message).toBe('SMTP_SECURITY: must be one of tls, starttls, none, got "tsl"');
    // Case matters: "TLS" is not silently taken for "tls" either.
    expect(
      refusal(() => envOneOf("SMTP_SECURITY", "starttls", modes, { SMTP_SECURITY: "TLS" })),
    ).toBeDefined();
  });

  test("key=value pairs, in order; a pair missing a side is refused", () => {
    expect(envPairs("X", { X: " page=CRITICAL, error = HIGH ," })).toEqual([
      ["page", "CRITICAL"],
      ["error", "HIGH"],
    ]);
    expect(envPairs("X", {})).toEqual([]);
    for (const bad of ["page", "=HIGH", "page="])
      expect(refusal(() => envPairs("X", { X: bad }))?.message).toBe(
        `X: expected key=value pairs separated by commas, got "${bad}"`,
      );
  });

  test("LOG_LEVEL", () => {
    expect(logLevelSetting({ LOG_LEVEL: "warn" })).toBe("warn");
    expect(refusal(() => logLevelSetting({ LOG_LEVEL: "verbose" }))?.variable).toBe("LOG_LEVEL");
  });
});
