/**
 * Runs pipeline stages as real separate processes for end-to-end tests, each with the topics,
 * groups and Redis keys of one test, and waits until each reports its HTTP port.
 */
import type { Subprocess } from "bun";

/** The stages a pipeline runs; the alert-producer's tests start it on its own. */
export type StageName = "evaluator" | "aggregator" | "sender" | "rule-service" | "rule-updater";

export interface StageProcess<Name extends string = StageName> {
  name: Name;
  process: Subprocess<"ignore", "pipe", "inherit">;
  httpPort: number;
  output: string[];
}

const repoRoot = new URL("..", import.meta.url).pathname;

/** `command` overrides how a stage starts, e.g. a compiled binary instead of `bun main.ts`. */
export async function startStage<Name extends string = StageName>(
  name: Name,
  env: Record<string, string>,
  command: string[] = [process.execPath, `src/stages/${name}/main.ts`],
  startTimeoutMs = 20_000,
): Promise<StageProcess<Name>> {
  const child = Bun.spawn(command, {
    cwd: repoRoot,
    env: { ...process.env, HTTP_PORT: "0", LOG_LEVEL: "info", ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "inherit",
  });
  const output: string[] = [];
  let resolvePort: (port: number) => void = () => {};
  const portKnown = new Promise<number>((resolve) => {
    resolvePort = resolve;
  });
  void (async () => {
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of child.stdout) {
      pending += decoder.decode(chunk, { stream: true });
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        output.push(line);
        if (line.includes('"message":"started"'))
          resolvePort((JSON.parse(line) as { httpPort: number }).httpPort);
      }
    }
  })();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(
        new Error(`${name} did not start within ${startTimeoutMs} ms:\n${output.slice(-20).join("\n")}`),
      );
    }, startTimeoutMs);
  });
  const httpPort = await Promise.race([portKnown, timeout]).finally(() => clearTimeout(timer));
  return { name, process: child, httpPort, output };
}

/** SIGTERM, then SIGKILL if the stage has not exited within `timeoutMs`. Returns the exit code. */
export async function stopStage(stage: StageProcess<string>, timeoutMs = 8000): Promise<number | null> {
  stage.process.kill("SIGTERM");
  const exited = await Promise.race([stage.process.exited, Bun.sleep(timeoutMs).then(() => undefined)]);
  if (exited === undefined) {
    stage.process.kill("SIGKILL");
    await stage.process.exited;
    return null;
  }
  return exited;
}

/** Waits until `check` returns true, polling every `intervalMs`; false on timeout. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 50,
): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await check()) return true;
    await Bun.sleep(intervalMs);
  }
  return await check();
}
