import { describe, expect, test } from "bun:test";
import { OffsetTracker } from "./offsets.ts";

const commitsOf = (tracker: OffsetTracker) =>
  tracker.pendingCommits().map(({ partition, offset }) => ({ partition, offset }));

describe("OffsetTracker", () => {
  test("nothing is committable before any segment completes", () => {
    const tracker = new OffsetTracker();
    tracker.track("t", 0, 1, 9);
    expect(commitsOf(tracker)).toEqual([]);
  });

  test("commits only the contiguous completed prefix of a partition", () => {
    const tracker = new OffsetTracker();
    const first = tracker.track("t", 0, 1, 9);
    const second = tracker.track("t", 0, 1, 19);
    const third = tracker.track("t", 0, 1, 29);
    tracker.complete(third);
    expect(commitsOf(tracker)).toEqual([]);
    tracker.complete(first);
    expect(commitsOf(tracker)).toEqual([{ partition: 0, offset: 10 }]);
    tracker.complete(second);
    expect(commitsOf(tracker)).toEqual([{ partition: 0, offset: 30 }]);
  });

  test("partitions advance independently and committed offsets are not repeated", () => {
    const tracker = new OffsetTracker();
    const a = tracker.track("t", 0, 1, 5);
    const b = tracker.track("t", 1, 1, 7);
    tracker.complete(b);
    expect(commitsOf(tracker)).toEqual([{ partition: 1, offset: 8 }]);
    tracker.markCommitted(tracker.pendingCommits());
    expect(commitsOf(tracker)).toEqual([]);
    tracker.complete(a);
    expect(commitsOf(tracker)).toEqual([{ partition: 0, offset: 6 }]);
  });

  test("revoke returns durable offsets and drops in-flight work of that partition", () => {
    const tracker = new OffsetTracker();
    const done = tracker.track("t", 0, 1, 4);
    const inFlight = tracker.track("t", 0, 1, 9);
    tracker.complete(done);
    expect(tracker.revoke([{ topic: "t", partition: 0 }]).map((o) => o.offset)).toEqual([5]);
    tracker.complete(inFlight); // its outputs were acknowledged after the revoke
    expect(commitsOf(tracker)).toEqual([]);
    expect(tracker.inFlightCount).toBe(0);
  });

  test("work of an old assignment epoch never reaches a newer one", () => {
    const tracker = new OffsetTracker();
    const old = tracker.track("t", 0, 1, 9);
    tracker.revoke([{ topic: "t", partition: 0 }]);
    const fresh = tracker.track("t", 0, 2, 9);
    tracker.complete(old);
    expect(commitsOf(tracker)).toEqual([]);
    tracker.complete(fresh);
    expect(tracker.pendingCommits()).toEqual([{ topic: "t", partition: 0, offset: 10, assignmentEpoch: 2 }]);
  });

  test("offsets going backwards within an assignment are a programmer error", () => {
    const tracker = new OffsetTracker();
    tracker.track("t", 0, 1, 9);
    expect(() => tracker.track("t", 0, 1, 9)).toThrow(/offsets must grow/);
  });
});
