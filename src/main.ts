/**
 * One executable for every stage: `alerting <stage> [args]`. `./dev build` compiles this file with
 * `bun build --compile`; each stage's own main.ts stays runnable with `bun src/stages/<stage>/main.ts`.
 * The imports are static strings so the compiler bundles every stage.
 */
const stages: Record<string, () => Promise<unknown>> = {
  "alert-producer": () => import("./stages/alert-producer/main.ts"),
  "rule-service": () => import("./stages/rule-service/main.ts"),
  "rule-updater": () => import("./stages/rule-updater/main.ts"),
  evaluator: () => import("./stages/evaluator/main.ts"),
  aggregator: () => import("./stages/aggregator/main.ts"),
  sender: () => import("./stages/sender/main.ts"),
  // One-shot setup commands for containers, where ./dev is not available.
  migrate: () => import("./setup/migrate.ts"),
  topics: () => import("./setup/topics.ts"),
  dlq: () => import("./setup/dlq.ts"),
};

const [stage, ...rest] = process.argv.slice(2);
const start = stage === undefined ? undefined : stages[stage];
if (start === undefined) {
  console.error(`usage: alerting <stage> [args]; stages: ${Object.keys(stages).join(", ")}`);
  process.exit(2);
}
// A stage reads its own arguments from process.argv after its name, as when run directly.
process.argv = [process.argv[0] as string, stage as string, ...rest];
await start();

export {};
