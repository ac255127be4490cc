/**
 * Stage configuration from environment variables: every value has a default, is validated, and a
 * bad one stops the process with a message naming the variable and the reason.
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
