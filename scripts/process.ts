/** Small helpers shared by the scripts: where the repo is, running commands, and one-line errors. */
import { resolve } from "node:path";

export const repoRoot = resolve(import.meta.dir, "..");

/** A failure the user can fix; `./dev` prints its message as one line, without a stack trace. */
export class SetupError extends Error {}

/** Runs a command with the terminal attached and returns its exit code. */
export async function run(command: string[], env: Record<string, string | undefined> = process.env) {
  const child = Bun.spawn(command, { cwd: repoRoot, env, stdio: ["inherit", "inherit", "inherit"] });
  return await child.exited;
}

/** Runs a command quietly and returns its exit code and combined output (for error messages). */
export async function capture(command: string[]): Promise<{ exitCode: number; output: string }> {
  const child = Bun.spawn(command, { cwd: repoRoot, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { exitCode, output: stdout + stderr };
}

export function requireCommand(name: string, fix: string): void {
  if (!Bun.which(name)) throw new SetupError(`${name} not found: ${fix}`);
}
