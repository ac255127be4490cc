import { expect, test } from "bun:test";
import { infraUrls } from "../../src/runtime/env.ts";

// kcat (librdkafka) until the project's own client has a produce/consume test here.
test("the broker answers a metadata request", () => {
  const result = Bun.spawnSync(["kcat", "-L", "-b", infraUrls.kafkaBrokers, "-m", "5"], {
    stdout: "pipe",
    stderr: "pipe",
  });
  expect(result.stderr.toString()).toBe("");
  expect(result.exitCode).toBe(0);
  expect(result.stdout.toString()).toMatch(/^ \d+ brokers:$/m);
});
