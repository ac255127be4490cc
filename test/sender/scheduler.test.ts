/**
 * The scheduler loop's own decisions, with the store and dispatcher replaced by functions that
 * count their calls (the re-driving itself runs against Postgres in sender.test.ts and the chaos
 * run): a pass that never settles fails the stage instead of stalling it; an ordinary error is
 * retried on the next interval; a full batch goes again at once; a slow dispatch does not hold back
 * the next passes, up to the bound on dispatches in flight.
 */
import { expect, test } from "bun:test";
import { quiet } from "../../harness/kafka.ts";
import type { ClaimedNotification } from "../../src/adapters/delivery-store.ts";
import { DeadlineError } from "../../src/runtime/deadline.ts";
import { startScheduler } from "../../src/stages/sender/scheduler.ts";

const noCounts = { delivered: 0, retryable: 0, permanent: 0 };
const dispatcher = { dispatch: async () => noCounts, dispatchGroups: async () => noCounts };
const claimed = (count: number) =>
  Array.from({ length: count }, (_, i) => ({ id: String(i) }) as ClaimedNotification);

test("a pass that never settles rejects `failed` with a DeadlineError and ends the loop", async () => {
  let calls = 0;
  const store = {
    claimDue: () => {
      calls++;
      return new Promise<ClaimedNotification[]>(() => {}); // a query postgres.js never answers
    },
  };
  const scheduler = startScheduler(store, dispatcher, quiet, {
    intervalMs: 10,
    batchSizeMax: 10,
    passTimeoutMs: 200,
    dispatchesMax: 4,
  });
  const startedAt = performance.now();
  const failure = await scheduler.failed.catch((error: unknown) => error);
  expect(failure).toBeInstanceOf(DeadlineError);
  expect(performance.now() - startedAt).toBeLessThan(2000);
  await Bun.sleep(100);
  expect(calls).toBe(1); // not retried in this process
  await scheduler.stop(100);
});

test("an ordinary error is retried on the next interval and does not fail the stage", async () => {
  let calls = 0;
  const store = {
    claimDue: async () => {
      calls++;
      if (calls <= 2) throw new Error("connection reset");
      return [];
    },
  };
  const scheduler = startScheduler(store, dispatcher, quiet, {
    intervalMs: 20,
    batchSizeMax: 10,
    passTimeoutMs: 1000,
    dispatchesMax: 4,
  });
  let failed = false;
  scheduler.failed.catch(() => {
    failed = true;
  });
  while (calls < 4) await Bun.sleep(10);
  await scheduler.stop();
  expect(failed).toBe(false);
});

test("a full batch is followed at once by the next pass, a partial one waits for the interval", async () => {
  const batches = [5, 5, 2, 0];
  const claimedAt: number[] = [];
  const store = {
    claimDue: async () => {
      claimedAt.push(performance.now());
      return claimed(batches[claimedAt.length - 1] ?? 0);
    },
  };
  const scheduler = startScheduler(store, dispatcher, quiet, {
    intervalMs: 300,
    batchSizeMax: 5,
    passTimeoutMs: 1000,
    dispatchesMax: 4,
  });
  while (claimedAt.length < 4) await Bun.sleep(10);
  await scheduler.stop();
  const [first, second, third, fourth] = claimedAt as [number, number, number, number];
  expect(second - first).toBeLessThan(100);
  expect(third - second).toBeLessThan(100);
  expect(fourth - third).toBeGreaterThanOrEqual(250);
});

test("a group window due sooner than the interval brings the next pass forward", async () => {
  const passedAt: number[] = [];
  const store = {
    claimDue: async () => {
      passedAt.push(performance.now());
      return [];
    },
  };
  // Due in 100 ms after the first pass, then nothing waiting.
  const dueIn = [100, null];
  const groups = {
    store: { claimDue: async () => [], nextDueInMs: async () => dueIn[passedAt.length - 1] ?? null },
    sendsPerPassMax: 10,
  };
  const scheduler = startScheduler(store, dispatcher, quiet, {
    intervalMs: 600,
    batchSizeMax: 5,
    passTimeoutMs: 1000,
    dispatchesMax: 4,
    groups,
  });
  while (passedAt.length < 3) await Bun.sleep(10);
  await scheduler.stop();
  const [first, second, third] = passedAt as [number, number, number];
  expect(second - first).toBeGreaterThanOrEqual(90);
  expect(second - first).toBeLessThan(400);
  expect(third - second).toBeGreaterThanOrEqual(550);
});

test("a slow dispatch does not hold back the next passes; at most dispatchesMax run at once", async () => {
  const releases: (() => void)[] = [];
  let groupClaims = 0;
  const slowDispatcher = {
    dispatch: async () => noCounts,
    // Every group send hangs until released: an endpoint that answers only at its timeout.
    dispatchGroups: () =>
      new Promise<typeof noCounts>((resolve) => {
        releases.push(() => resolve(noCounts));
      }),
  };
  const groups = {
    store: {
      claimDue: async () => {
        groupClaims++;
        return [{ id: String(groupClaims) }] as never[];
      },
      nextDueInMs: async () => null,
    },
    sendsPerPassMax: 10,
  };
  const scheduler = startScheduler({ claimDue: async () => [] }, slowDispatcher, quiet, {
    intervalMs: 20,
    batchSizeMax: 5,
    passTimeoutMs: 1000,
    dispatchesMax: 3,
    groups,
  });
  await Bun.sleep(300);
  // Three passes went on while the first dispatch hung, then the bound held the fourth back.
  expect(groupClaims).toBe(3);
  expect(releases).toHaveLength(3);
  releases.shift()?.();
  await Bun.sleep(100);
  expect(groupClaims).toBe(4);
  for (const release of releases) release();
  await scheduler.stop(1000);
});

test("a dispatch that never settles fails the stage; a stop while waiting for a slot claims nothing more", async () => {
  let claims = 0;
  const hanging = {
    dispatch: () => new Promise<typeof noCounts>(() => {}), // its endpoint lookup never answered
    dispatchGroups: async () => noCounts,
  };
  const scheduler = startScheduler(
    {
      claimDue: async () => {
        claims++;
        return claimed(1);
      },
    },
    hanging,
    quiet,
    { intervalMs: 10, batchSizeMax: 5, passTimeoutMs: 300, dispatchesMax: 2 },
  );
  const failure = await scheduler.failed.catch((error: unknown) => error);
  expect(failure).toBeInstanceOf(DeadlineError);
  await Bun.sleep(100);
  // Two dispatches filled the slots; the third pass waited for one and never claimed after the failure.
  expect(claims).toBe(2);
  await scheduler.stop(100);

  let stoppedClaims = 0;
  const parked = startScheduler(
    {
      claimDue: async () => {
        stoppedClaims++;
        return claimed(1);
      },
    },
    { dispatch: () => new Promise<typeof noCounts>(() => {}), dispatchGroups: async () => noCounts },
    quiet,
    { intervalMs: 10, batchSizeMax: 5, passTimeoutMs: 1000, dispatchesMax: 1 },
  );
  await Bun.sleep(100);
  expect(stoppedClaims).toBe(1);
  await parked.stop(200);
  // The hung dispatch still ends in its deadline; nothing was claimed after the stop.
  expect(await parked.failed.catch((error: unknown) => error)).toBeInstanceOf(DeadlineError);
  expect(stoppedClaims).toBe(1);
});
