/**
 * Settings from environment variables, the one way every process reads them: each has a default
 * (an unset or empty variable means the default), is validated, and a bad one is a ConfigError
 * naming the variable and the reason. A process reads all its settings before it starts anything
 * (settingsOrExit in service.ts), so a bad one stops it at once with exit code 2.
 */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    reason: string,
  ) {
    super(`${variable}: ${reason}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

export function envString(name: string, fallback: string, env: Env = process.env): string {
  const value = env[name];
  if (value === undefined || value === "") return fallback;
  return value;
}

export function envInt(
  name: string,
  fallback: number,
  bounds: { min: number; max: number },
  env: Env = process.env,
): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value)) throw new ConfigError(name, `must be an integer, got "${raw}"`);
  if (value < bounds.min || value > bounds.max) {
    throw new ConfigError(name, `must be within ${bounds.min}..${bounds.max}, got ${value}`);
  }
  return value;
}

/** One of `choices`: anything else, a typo included, is refused rather than read as the default. */
export function envOneOf<const T extends string>(
  name: string,
  fallback: NoInfer<T>,
  choices: readonly T[],
  env: Env = process.env,
): T {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!(choices as readonly string[]).includes(raw)) {
    throw new ConfigError(name, `must be one of ${choices.join(", ")}, got "${raw}"`);
  }
  return raw as T;
}

/** A comma-separated list; items are trimmed and empty ones dropped. */
export function envList(name: string, env: Env = process.env): string[] {
  return envString(name, "", env)
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
}

/**
 * A comma-separated list of `key=value` pairs ("page=CRITICAL, error=HIGH"), in order; a pair without
 * `=` or with an empty side is refused.
 */
export function envPairs(name: string, env: Env = process.env): [string, string][] {
  return envList(name, env).map((item) => {
    const separator = item.indexOf("=");
    const key = item.slice(0, separator).trim();
    const value = item.slice(separator + 1).trim();
    if (separator < 0 || key === "" || value === "")
      throw new ConfigError(name, `expected key=value pairs separated by commas, got "${item}"`);
    return [key, value];
  });
}
