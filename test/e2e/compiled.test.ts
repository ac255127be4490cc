/**
 * The compiled executable (`./dev build` -> dist/alerting) runs the same pipeline: every stage is
 * started from the one binary, and a known alert stream arrives at the sink exactly once per alert.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { countDeliveries } from "../../harness/invariants.ts";
import { type Pipeline, startPipeline } from "../../harness/pipeline.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { eventually } from "../../harness/stages.ts";
import { binaryPath, buildBinary } from "../../scripts/build.ts";

const db = useTestSchema("e2e_compiled");
let pipeline: Pipeline;

beforeAll(async () => {
  expect(await buildBinary()).toBe(0);
  pipeline = await startPipeline({ command: (stage) => [binaryPath, stage], postgresUrl: db.url });
}, 120_000);

afterAll(async () => {
  expect(await pipeline.stop()).toEqual(pipeline.stages.map(() => 0));
});

test("the compiled stages deliver every expected notification once", async () => {
  const before = await pipeline.rulesVersionApplied();
  const { clientId } = await pipeline.createClientWithRule("compiled");
  expect(await eventually(async () => (await pipeline.rulesVersionApplied()) > before, 15_000)).toBe(true);
  const ids = Array.from({ length: 100 }, (_, i) => `bin-${pipeline.run}-${i}`);
  await pipeline.producer.send(
    ids.map((id) => ({ topic: pipeline.topics.alertsNew, key: id, value: pipeline.alert(id, "compiled") })),
  );
  const atSink = () => pipeline.sink.received.filter((r) => r.path === `/hook/${clientId}`);
  expect(await eventually(() => atSink().length >= ids.length, 30_000, 100)).toBe(true);
  await Bun.sleep(500);
  const count = countDeliveries(
    ids,
    atSink().map((r) => (JSON.parse(r.body) as { alertId: string }).alertId),
  );
  expect(count.lost).toEqual([]);
  expect(count.duplicated).toEqual([]);
  expect(count.unexpected).toEqual([]);
}, 60_000);
