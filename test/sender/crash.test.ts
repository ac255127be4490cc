/**
 * kill -9 of the sender while deliveries are in flight (the sink answers after 2 s), then a restart
 * with the same group and LEASE_MS=5000. Every row must end SENT with one SUCCESS delivery; a
 * notification may reach the sink twice only if the dead sender held it under a lease, only after
 * that lease expired, and always with the same Idempotency-Key.
 */
import { afterAll, expect, test } from "bun:test";
import { countDeliveries } from "../../harness/invariants.ts";
import { brokers, quiet } from "../../harness/kafka.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { eventually, type StageProcess, stopStage } from "../../harness/stages.ts";
import { Producer } from "../../src/kafka/index.ts";
import { HttpSink } from "../channels/sink.ts";
import { deliveriesOf, readyRecord, rowsById, senderTopic, settled, startSender, tenant } from "./support.ts";

const db = useTestSchema("sender_crash");
const { sql } = db;
const producer = new Producer({ brokers, logger: quiet });
const responseDelayMs = 2000;
const leaseMs = 5000;
const notifications = 30;
const stages: StageProcess[] = [];

afterAll(async () => {
  for (const stage of stages) if (stage.process.exitCode === null) stage.process.kill("SIGKILL");
  await producer.close();
});

test("kill -9 mid-delivery: all SENT, one SUCCESS each, repeats only after an expired lease", async () => {
  const startedAt = performance.now();
  const arrivals: { atMs: number; key: string; notificationId: string }[] = [];
  const sink = new HttpSink(async (request) => {
    arrivals.push({
      atMs: Date.now(),
      key: request.headers.get("idempotency-key") ?? "",
      notificationId: (JSON.parse(request.body) as { notificationId: string }).notificationId,
    });
    await Bun.sleep(responseDelayMs);
    return new Response("ok");
  });
  try {
    const t = await tenant(sql, "snd-crash");
    const ruleId = await t.rule();
    await t.endpoint(ruleId, "webhook", sink.url(`/crash/${t.clientId}`));
    const ids: string[] = [];
    for (let i = 0; i < notifications; i++)
      ids.push(await t.notification([ruleId], { alertId: `crash-${i}` }));
    const topic = await senderTopic("snd-crash");
    // The lease at least twice the delivery timeout, which outlasts the sink's answers.
    const env = { LEASE_MS: String(leaseMs), HTTP_TIMEOUT_MS: String(leaseMs / 2) };

    const first = await startSender(db, topic, env);
    stages.push(first);
    const [firstWave, secondWave] = [ids.slice(0, notifications / 2), ids.slice(notifications / 2)];
    await producer.send(firstWave.map((id) => readyRecord(topic.topic, id, t.clientId, id)));
    // Deliveries are in flight: the sink has them and holds its answers for 2 s. The second wave
    // is consumed but not claimed yet: the stage processes one batch at a time.
    expect(await eventually(() => arrivals.length > 0, 20_000, 5)).toBe(true);
    await producer.send(secondWave.map((id) => readyRecord(topic.topic, id, t.clientId, id)));
    await Bun.sleep(300 + Math.random() * 700);
    first.process.kill("SIGKILL");
    await first.process.exited;
    const killedAtMs = Date.now();
    const killedAfterMs = Math.round(performance.now() - startedAt);
    const inFlight = new Set(arrivals.filter((a) => a.atMs <= killedAtMs).map((a) => a.notificationId));
    // What the dead sender held: SENDING under a lease no one else may take before it expires.
    const atKill = await rowsById(sql, ids);
    const leased = new Map(
      [...atKill.values()].filter((r) => r.status === "SENDING").map((r) => [r.id, r.lease_until as Date]),
    );

    const second = await startSender(db, topic, env);
    stages.push(second);
    expect(await settled(sql, ids, ["SENT", "FAILED"], 30_000)).toBe(true);
    await Bun.sleep(responseDelayMs + 500); // a stray extra delivery would show up now
    const secondExit = await stopStage(second);

    const rows = await rowsById(sql, ids);
    expect([...rows.values()].filter((r) => r.status === "SENT")).toHaveLength(ids.length);
    const deliveries = await deliveriesOf(sql, ids);
    const successes = countDeliveries(
      ids,
      deliveries.filter((d) => d.outcome === "SUCCESS").map((d) => d.notification_id),
    );
    expect(successes.lost).toEqual([]);
    expect(successes.duplicated).toEqual([]);
    expect(successes.unexpected).toEqual([]);
    expect(deliveries.filter((d) => d.outcome !== "SUCCESS")).toEqual([]);

    const atSink = countDeliveries(
      ids,
      arrivals.map((a) => a.notificationId),
    );
    expect(atSink.lost).toEqual([]);
    expect(atSink.unexpected).toEqual([]);
    // Every request for a notification carries its id as the Idempotency-Key, repeats included.
    expect(arrivals.filter((a) => a.key !== a.notificationId)).toEqual([]);
    const repeats = atSink.duplicated.map((id) => {
      const times = arrivals.filter((a) => a.notificationId === id).map((a) => a.atMs);
      const leaseUntil = leased.get(id);
      return {
        id,
        deliveries: times.length,
        firstAtMs: times[0],
        repeatAtMs: times[1],
        leaseUntilMs: leaseUntil?.getTime(),
        afterLeaseMs: leaseUntil === undefined ? undefined : (times[1] as number) - leaseUntil.getTime(),
      };
    });
    const summary = {
      killedAfterMs,
      inFlightAtKill: inFlight.size,
      leasedAtKill: leased.size,
      notClaimedAtKill: [...atKill.values()].filter((r) => r.status === "RECEIVED").length,
      repeated: repeats.length,
      repeats,
      seconds: Math.round(performance.now() - startedAt) / 1000,
    };
    console.log(`sender crash test: ${JSON.stringify(summary)}`);

    expect(inFlight.size).toBeGreaterThan(0);
    // Whatever the dead sender had not leased reached the sink exactly once.
    const notLeased = ids.filter((id) => !leased.has(id));
    expect(notLeased.filter((id) => atSink.duplicated.includes(id))).toEqual([]);
    // A repeat only for what the dead sender had leased, never before that lease expired...
    for (const repeat of repeats) {
      expect(leased.has(repeat.id)).toBe(true);
      expect(repeat.deliveries).toBe(2);
      expect(repeat.afterLeaseMs).toBeGreaterThanOrEqual(0);
    }
    // ...and every delivery the kill cut off was repeated (its success was never recorded).
    expect(new Set(repeats.map((r) => r.id))).toEqual(inFlight);
    expect(secondExit).toBe(0);
  } finally {
    await sink.stop();
  }
}, 45_000);
