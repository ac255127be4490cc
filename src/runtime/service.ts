/**
 * What every stage process has besides its work: settings checked before anything starts, an HTTP
 * port with /healthz, /readyz and /metrics (plus any routes the stage adds), and a bounded graceful
 * shutdown on SIGTERM/SIGINT.
 */
import type { Registry } from "prom-client";
import { ConfigError, envString } from "./config.ts";
import { createLogger, type Logger, logRank } from "./log.ts";

/**
 * Runs `read`, which reads every setting the process has; a bad one ends the process with exit code
 * 2 and one error line naming the variable and the reason. The line is written whatever LOG_LEVEL
 * says, since LOG_LEVEL may be the bad one.
 */
export function settingsOrExit<T>(component: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    createLogger(component, logRank.error).error(error.message);
    process.exit(2);
  }
}

export interface ServiceOptions {
  port: number;
  registry: Registry;
  isReady: () => boolean;
  /** Extra routes in Bun.serve's `routes` form (the rule-service's API, the ingest endpoints). */
  routes?: Record<string, unknown>;
  fetch?: (request: Request) => Response | Promise<Response>;
}

export interface Service {
  readonly port: number;
  stop(): Promise<void>;
}

export function startService(options: ServiceOptions): Service {
  const server = Bun.serve({
    port: options.port,
    hostname: envString("HTTP_HOST", "127.0.0.1"),
    // Bun would answer a body over its own limit with a bare 413 before any handler runs. The handlers
    // that take bodies read them through readJsonBody, which stops at their limit with a JSON 413, and
    // Bun does not buffer a body nobody reads, so its limit is lifted.
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    // Bundled pages (the console) are served built, without Bun's hot-reload client.
    development: false,
    routes: {
      "/healthz": () => Response.json({ status: "ok" }),
      "/readyz": () =>
        options.isReady() ? Response.json({ ready: true }) : Response.json({ ready: false }, { status: 503 }),
      "/metrics": async () =>
        new Response(await options.registry.metrics(), {
          headers: { "content-type": options.registry.contentType },
        }),
      ...(options.routes as Record<string, never>),
    },
    fetch:
      options.fetch ??
      (() => Response.json({ error: { code: "not_found", message: "no such route" } }, { status: 404 })),
  });
  return {
    port: server.port as number,
    stop: () => server.stop(true),
  };
}

/**
 * Runs `shutdown` once on the first SIGTERM or SIGINT, then exits: 0 when it finished within
 * `timeoutMs`, 1 otherwise. A second signal exits at once.
 */
export function exitOnSignal(shutdown: () => Promise<void>, logger: Logger, timeoutMs = 5000): void {
  let stopping = false;
  const onSignal = (signal: string) => {
    if (stopping) process.exit(130);
    stopping = true;
    logger.info("shutting down", { signal });
    const timer = setTimeout(() => {
      logger.error("shutdown took too long, exiting", { timeoutMs });
      process.exit(1);
    }, timeoutMs);
    shutdown().then(
      () => {
        clearTimeout(timer);
        logger.info("stopped");
        process.exit(0);
      },
      (error: unknown) => {
        logger.error("shutdown failed", { error });
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));
}
