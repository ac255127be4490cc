/**
 * `./dev build`: compiles every stage into one executable, dist/alerting (`alerting <stage>`).
 * librdkafka is loaded at run time (dlopen), so the machine or image running it needs librdkafka1.
 */
import { join } from "node:path";

export const binaryPath = join(import.meta.dir, "..", "dist", "alerting");

export async function buildBinary(): Promise<number> {
  const startedAt = performance.now();
  const build = Bun.spawn(
    [
      process.execPath,
      "build",
      "--compile",
      "--minify",
      "--sourcemap",
      join(import.meta.dir, "..", "src", "main.ts"),
      "--outfile",
      binaryPath,
    ],
    { stdout: "inherit", stderr: "inherit" },
  );
  const code = await build.exited;
  if (code === 0) {
    const sizeMiB = Bun.file(binaryPath).size / 2 ** 20;
    console.log(
      `build: ${binaryPath} (${sizeMiB.toFixed(0)} MiB) in ${((performance.now() - startedAt) / 1000).toFixed(1)} s`,
    );
  }
  return code;
}

if (import.meta.main) process.exit(await buildBinary());
