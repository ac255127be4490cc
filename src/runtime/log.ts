/**
 * JSON-lines logger on stdout: one object per line with time, level, component and message.
 * Synchronous writes keep lines whole and ordered even when the process is about to exit.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

function configuredLevel(): number {
  const level = (process.env.LOG_LEVEL ?? "info") as LogLevel;
  return rank[level] ?? rank.info;
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

export function createLogger(component: string, minimumRank: number = configuredLevel()): Logger {
  const emit = (level: LogLevel, message: string, fields?: LogFields) => {
    if (rank[level] < minimumRank) return;
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
