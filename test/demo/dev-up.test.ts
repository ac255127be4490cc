/**
 * `./dev up` as a user runs it, in a subprocess: the stages start, the demo seeds its clients and
 * streams alerts, and notifications reach both demo sinks; then Ctrl-C (SIGINT) must stop every
 * process the demo started and exit 0.
 *
 * The demo listens on fixed ports (scripts/stages.ts), unlike every other test: if something holds
 * one of them (usually a `./dev up` left running) the test fails at once and says which.
 */
import { expect, test } from "bun:test";
import { eventually } from "../../harness/stages.ts";
import { assertPortsFree } from "../../scripts/demo/processes.ts";
import { demoPorts, stagePorts } from "../../scripts/stages.ts";

const repoRoot = new URL("../..", import.meta.url).pathname;
const sinkLine = (kind: "webhook" | "mail") => new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3}  ${kind} `);

test("./dev up delivers demo alerts to the webhook and SMTP sinks, and Ctrl-C stops it all", async () => {
  await assertPortsFree({ ...stagePorts, ...demoPorts });

  // stdout is a pipe, not a terminal: the demo prints plain lines and no live view.
  const dev = Bun.spawn(["./dev", "up"], { cwd: repoRoot, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const lines: string[] = [];
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of stream) {
      pending += decoder.decode(chunk, { stream: true });
      const complete = pending.split("\n");
      pending = complete.pop() ?? "";
      lines.push(...complete);
    }
  };
  const output = Promise.all([collect(dev.stdout), collect(dev.stderr)]);
  // Every child of the demo runs in a session of its own, named on its "ready" or "demo alerts" line.
  const childPids = () =>
    lines.flatMap((line) => /^(?:ready|demo alerts).*\bpid (\d+)\b/.exec(line)?.[1] ?? []);

  try {
    const delivered = await eventually(
      () => lines.some((l) => sinkLine("webhook").test(l)) && lines.some((l) => sinkLine("mail").test(l)),
      40_000,
      100,
    );
    expect(delivered, `no delivery at both sinks within 40 s; output:\n${lines.join("\n")}`).toBe(true);
    expect(childPids().length).toBe(Object.keys(stagePorts).length + 1);

    dev.kill("SIGINT");
    const exitCode = await Promise.race([dev.exited, Bun.sleep(30_000).then(() => "still running")]);
    await Promise.race([output, Bun.sleep(1000)]);
    expect(exitCode, `./dev up after SIGINT; output:\n${lines.join("\n")}`).toBe(0);
    const stopped = lines.filter((line) => /^stopped\b/.test(line));
    expect(stopped).toEqual([
      "stopped demo-alerts (exit 0)",
      ...Object.keys(stagePorts)
        .reverse()
        .map((name) => `stopped ${name} (exit 0)`),
      "stopped",
    ]);

    const leftovers = Bun.spawnSync(["pgrep", "-a", "-s", childPids().join(",")])
      .stdout.toString()
      .trim();
    expect(leftovers, "processes left in the demo's sessions").toBe("");
  } finally {
    // Only when an assertion failed early: nothing of this test may outlive it.
    if (dev.exitCode === null) dev.kill("SIGKILL");
    for (const pid of childPids()) Bun.spawnSync(["pkill", "-KILL", "-s", pid]);
  }
}, 75_000);
