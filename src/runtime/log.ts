/**
 * JSON-lines logger on stdout: one object per line with time, level, component and message.
 * Synchronous writes keep lines whole and ordered even when the process is about to exit.
 */
import { envOneOf } from "./config.ts";

const logLevels = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof logLevels)[number];
export type LogFields = Record<string, unknown>;

/** A logger's minimum rank: it writes lines of this rank and above. */
export const logRank: Readonly<Record<LogLevel, number>> = { debug: 10, info: 20, warn: 30, error: 40 };

/** LOG_LEVEL, "info" by default; a typo is a ConfigError, not a silent "info". */
export function logLevelSetting(env: Record<string, string | undefined> = process.env): LogLevel {
  return envOneOf("LOG_LEVEL", "info", logLevels, env);
}

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(component: string): Logger;
}

function serialise(value: unknown): unknown {
  return value instanceof Error ? { name: value.name, message: value.message } : value;
}

export function createLogger(component: string, minimumRank: number = logRank[logLevelSetting()]): Logger {
  const emit = (level: LogLevel, message: string, fields?: LogFields) => {
    if (logRank[level] < minimumRank) return;
    const line: LogFields = { time: new Date().toISOString(), level, component, message };
    if (fields) for (const [key, value] of Object.entries(fields)) line[key] = serialise(value);
    process.stdout.write(`${JSON.stringify(line)}\n`);
  };
  return {
    debug: (message, fields) => emit("debug", message, fields),
    info: (message, fields) => emit("info", message, fields),
    warn: (message, fields) => emit("warn", message, fields),
    error: (message, fields) => emit("error", message, fields),
    child: (name) => createLogger(`${component}.${name}`, minimumRank),
  };
}
