/**
 * Child processes of `./dev up`: each writes its output to .run/logs/<name>.log, runs in its own
 * session, and is stopped with SIGTERM, then SIGKILL after a bound.
 *
 * Why a session of its own: Ctrl-C in a terminal signals the whole foreground process group. If the
 * stages were in it they would get SIGINT from the terminal and then SIGTERM from us, and a stage
 * takes a second signal as "exit now". Detached, only `./dev` hears Ctrl-C and stops them in order.
 * The cost is that nothing kills them for us, so `killLeftovers` runs whenever `./dev` exits.
 */
import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import type { Subprocess } from "bun";
import { repoRoot, SetupError } from "../process.ts";

export const logDir = join(repoRoot, ".run/logs");

export interface ChildProcess {
  name: string;
  pid: number;
  /** The log file, relative to the repository (for messages). */
  logFile: string;
  /** SIGTERM, wait up to `timeoutMs`, then SIGKILL; resolves to the exit code (null when killed). */
  stop(timeoutMs?: number): Promise<number | null>;
  readonly exited: Promise<number>;
}

const running = new Set<Subprocess>();

/** Starts `command` from the repository root with its stdout and stderr in .run/logs/<name>.log. */
export function spawnLogged(name: string, command: string[], env: Record<string, string>): ChildProcess {
  mkdirSync(logDir, { recursive: true });
  const logPath = join(logDir, `${name}.log`);
  const fd = openSync(logPath, "w"); // one log per run: the file starts empty
  const child = Bun.spawn(command, {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ["ignore", fd, fd],
    detached: true,
  });
  closeSync(fd); // the child has its own copy
  running.add(child);
  const exited = child.exited.finally(() => running.delete(child));
  return {
    name,
    pid: child.pid,
    logFile: relative(repoRoot, logPath),
    exited,
    async stop(timeoutMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill("SIGTERM");
      const code = await Promise.race([exited, Bun.sleep(timeoutMs).then(() => undefined)]);
      if (code !== undefined) return code;
      child.kill("SIGKILL");
      await exited;
      return null;
    },
  };
}

/** Last lines of a child's log, for error messages. */
export function logTail(child: ChildProcess, lines = 5): string {
  try {
    const text = readFileSync(join(repoRoot, child.logFile), "utf8").trimEnd();
    return text.split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/**
 * Polls http://127.0.0.1:<port>/readyz until it answers 200. Fails early when the process exits,
 * and at the deadline; both errors name the process and its log.
 */
export async function waitUntilReady(child: ChildProcess, port: number, timeoutMs: number): Promise<void> {
  let exitCode: number | undefined;
  void child.exited.then((code) => {
    exitCode = code;
  });
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (exitCode !== undefined) {
      throw new SetupError(`${child.name} exited with code ${exitCode} while starting: see ${child.logFile}`);
    }
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) }).then(
      (response) => response.ok,
      () => false, // not listening yet
    );
    if (ready) return;
    await Bun.sleep(200);
  }
  throw new SetupError(
    `${child.name} was not ready on port ${port} within ${timeoutMs / 1000} s: see ${child.logFile}`,
  );
}

/** Fails with one line naming the first port that something else already listens on. */
export async function assertPortsFree(ports: Record<string, number>): Promise<void> {
  for (const [owner, port] of Object.entries(ports)) {
    try {
      const listener = Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } });
      listener.stop(true);
    } catch {
      throw new SetupError(
        `port ${port} (for ${owner}) is in use: is another ./dev up running? (ss -ltnp 'sport = :${port}' shows who)`,
      );
    }
  }
}

/**
 * SIGKILLs every child still running. Registered for process exit, so even a crash of `./dev`
 * leaves no stage behind; after an orderly stop there is nothing left for it to do.
 */
export function killLeftovers(): void {
  for (const child of running) child.kill("SIGKILL");
}
