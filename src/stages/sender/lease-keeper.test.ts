import { expect, test } from "bun:test";
import { quiet } from "../../../harness/kafka.ts";
import { type LeasedWork, LeaseKeeper } from "./lease-keeper.ts";

// Starts allowed until 600 ms after a lease was taken or renewed; renewals every 200 ms.
const timing = { leaseMs: 1200, deliveryTimeoutMs: 300 };
const send = (id: string): LeasedWork => ({ id, attempts: 1, leasedAtMs: performance.now() });

test("renewed leases keep allowing starts; a send another sender took, or unrenewed leases, do not", async () => {
  const renewals: string[][] = [];
  let failing = false;
  const keeper = new LeaseKeeper(
    [send("1"), send("2")],
    async (held) => {
      renewals.push(held.map((s) => s.id));
      if (failing) throw new Error("connection reset");
      return new Set(["1"]); // "2" was claimed by another sender
    },
    timing,
    quiet,
  );
  try {
    expect([keeper.mayStart("1"), keeper.mayStart("2")]).toEqual([true, true]);
    await Bun.sleep(900); // past when the first lease alone would allow a start
    expect([keeper.mayStart("1"), keeper.mayStart("2")]).toEqual([true, false]);
    expect(renewals[0]).toEqual(["1", "2"]);
    expect(renewals.slice(1).every((ids) => ids.join() === "1")).toBe(true);

    failing = true;
    await Bun.sleep(800); // the last renewal that worked is over 600 ms old
    expect(keeper.mayStart("1")).toBe(false);
  } finally {
    keeper.stop();
  }
  const count = renewals.length;
  await Bun.sleep(400);
  expect(renewals.length).toBe(count);
});

test("a renewal that never settles stops renewal: the leases run out instead of being held forever", async () => {
  let renewals = 0;
  const keeper = new LeaseKeeper(
    [send("1")],
    () => {
      renewals++;
      return new Promise<Set<string>>(() => {}); // a query left pending by a dropped connection
    },
    timing,
    quiet,
  );
  try {
    await Bun.sleep(900);
    expect(renewals).toBe(1);
    expect(keeper.mayStart("1")).toBe(false);
  } finally {
    keeper.stop();
  }
});
