import { describe, expect, test } from "bun:test";
import {
  type AlertState,
  applySubmission,
  defaultPolicy,
  type LifecyclePolicy,
  type NotificationKind,
  routeSupersededAfterMs,
  type Submission,
  sweepState,
} from "./lifecycle.ts";

const nowMs = 1_000_000;
const firing = (eventMs: number, endsAtMs: number | null = null, policy = defaultPolicy): Submission => ({
  status: "firing",
  eventMs,
  endsAtMs,
  nowMs,
  policy,
  muted: false,
  silenced: false,
  ruleIds: ["rule-a"],
});
const resolved = (eventMs: number, endsAtMs: number, policy = defaultPolicy): Submission => ({
  status: "resolved",
  eventMs,
  endsAtMs,
  nowMs,
  policy,
  muted: false,
  silenced: false,
  ruleIds: ["rule-a"],
});
/** The submission as the evaluator flags it inside a mute window of the client's rules. */
const muted = (submission: Submission): Submission => ({ ...submission, muted: true });
/** The submission as flagged by a silence of the client. */
const silenced = (submission: Submission): Submission => ({ ...submission, silenced: true });
/** The submission as matched by these rules of the route (the helpers' own: rule-a). */
const byRules = (submission: Submission, ...ruleIds: string[]): Submission => ({ ...submission, ruleIds });

/** Applies the submissions in order: the final state and the notifications written, "<episode> <kind>". */
function run(submissions: readonly Submission[], start?: AlertState) {
  let state = start;
  const notified: string[] = [];
  for (const submission of submissions) {
    const transition = applySubmission(state, submission);
    state = transition.state;
    const { notify } = transition;
    if (notify)
      notified.push(`${notify.episode} ${notify.kind}${notify.ruleIds ? ` ${notify.ruleIds}` : ""}`);
  }
  return { state, notified };
}

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  );
}

/** Every notified episode has exactly one firing and one resolved notification, and no other kind. */
function expectClosedEpisodes(notified: readonly string[]) {
  const byEpisode = new Map<string, string[]>();
  for (const line of notified) {
    const [episode, kind] = line.split(" ") as [string, NotificationKind];
    byEpisode.set(episode, [...(byEpisode.get(episode) ?? []), kind]);
  }
  for (const kinds of byEpisode.values()) expect(kinds).toEqual(["firing", "resolved"]);
}

describe("applySubmission in order", () => {
  test("fire, re-send with a new startsAt, resolve, fire again", () => {
    const { state, notified } = run([
      firing(100, 5000),
      firing(100, 6000),
      firing(200, 7000),
      resolved(200, 900),
      firing(1000),
    ]);
    expect(notified).toEqual(["1 firing", "1 resolved", "2 firing"]);
    expect(state).toMatchObject({ episode: 2, state: "firing", episodeStartedMs: 1000 });
  });

  test("a redelivered old firing submission never reopens a resolved episode", () => {
    const { state, notified } = run([firing(100), resolved(100, 500), firing(100), firing(400)]);
    expect(notified).toEqual(["1 firing", "1 resolved"]);
    expect(state?.state).toBe("resolved");
  });

  test("a resolution of an alert never seen firing stores episode 0, resolved, and notifies nothing", () => {
    const { state, notified } = run([resolved(100, 500)]);
    expect(notified).toEqual([]);
    expect(state).toMatchObject({ episode: 0, state: "resolved", lastEventMs: 500 });
    expect(run([resolved(100, 500), firing(600)]).notified).toEqual(["1 firing"]);
  });

  test("re-sends keep the latest ends-at: an overtaken one cannot end the alert early", () => {
    expect(run([firing(100, 9000), firing(100, 5000)]).state?.endsAtMs).toBe(9000);
    expect(run([firing(100, 9000), firing(100, null)]).state?.endsAtMs).toBeNull();
  });

  test("redelivering every submission changes nothing", () => {
    const stream = [firing(100), firing(200), resolved(200, 300), firing(400), resolved(400, 500)];
    const once = run(stream);
    const twice = run(stream.flatMap((s) => [s, s]));
    expect(twice.notified).toEqual(once.notified);
    expect(twice.state).toEqual(once.state);
  });
});

describe("applySubmission in every order", () => {
  test("one episode: fire and resolve", () => {
    expect(run([firing(100), resolved(100, 500)]).notified).toEqual(["1 firing", "1 resolved"]);
    // The resolution overtook the firing submission: the episode was over before it was known.
    const reversed = run([resolved(100, 500), firing(100)]);
    expect(reversed.notified).toEqual([]);
    expect(reversed.state?.state).toBe("resolved");
  });

  const episodes = [
    firing(100, 5000),
    firing(150, 5000), // a re-send with a new startsAt, same episode
    resolved(150, 300),
    firing(400, 5000),
    resolved(400, 600),
  ];
  const orders = permutations(episodes);

  test(`two episodes with a re-send, all ${orders.length} orders: resolved at the end, every notified episode closed`, () => {
    const seen = new Set<string>();
    for (const order of orders) {
      const { state, notified } = run(order);
      expect(state?.state).toBe("resolved");
      expect(state?.lastEventMs).toBe(600);
      expectClosedEpisodes(notified);
      seen.add(notified.join(","));
      // And with every submission delivered twice, as after a crash: the same outcome.
      expect(run(order.flatMap((s) => [s, s])).notified).toEqual(notified);
    }
    expect(seen).toContain("1 firing,1 resolved,2 firing,2 resolved");
  });

  test("firing last in time ends firing in every order, with each earlier notified episode closed", () => {
    const stream = [firing(100), resolved(100, 300), firing(400)];
    for (const order of permutations(stream)) {
      const { state, notified } = run(order);
      expect(state?.state).toBe("firing");
      const open = notified.filter((line) => line.startsWith(`${state?.episode} `));
      expect(open).toEqual([`${state?.episode} firing`]);
      expectClosedEpisodes(notified.filter((line) => !open.includes(line)));
    }
  });
});

describe("policy", () => {
  const skip: LifecyclePolicy = { sendResolved: false, repeatIntervalMs: 60_000 };

  test("skip resolved: the alert resolves, no resolved notification, by submission or by the sweep", () => {
    const bySubmission = run([firing(100, null, skip), resolved(100, 500, skip)]);
    expect(bySubmission.notified).toEqual(["1 firing"]);
    expect(bySubmission.state?.state).toBe("resolved");
    const state = run([firing(100, 2000, skip)]).state as AlertState;
    const swept = sweepState(state, 2000, { resolveTimeoutMs: 300_000, repeatIntervalMs: 10 });
    expect(swept.notify).toBeUndefined();
    expect(swept.state?.state).toBe("resolved");
  });

  test("a firing re-send brings the rule's latest policy", () => {
    const state = run([firing(100), firing(100, null, skip)]).state as AlertState;
    expect(state.policy).toEqual(skip);
  });

  test("the sweep reminds at the alert's own repeat interval, else the default", () => {
    const settings = { resolveTimeoutMs: 10_000_000, repeatIntervalMs: 1000 };
    const own = run([firing(100, null, skip)]).state as AlertState;
    expect(sweepState(own, nowMs + 59_999, settings).notify).toBeUndefined();
    expect(sweepState(own, nowMs + 60_000, settings).notify).toEqual({
      episode: 1,
      kind: "repeat:1",
      ruleIds: ["rule-a"],
    });
    const plain = run([firing(100)]).state as AlertState;
    const reminded = sweepState(plain, nowMs + 1000, settings);
    expect(reminded.notify).toEqual({ episode: 1, kind: "repeat:1", ruleIds: ["rule-a"] });
    expect(sweepState(reminded.state as AlertState, nowMs + 2000, settings).notify?.kind).toBe("repeat:2");
  });
});

describe("mute windows: judged per submission", () => {
  const settings = { resolveTimeoutMs: 10_000_000, repeatIntervalMs: 1000 };

  test("opened muted: the firing row is written (SILENCED by the store), the episode is not notified", () => {
    const { state, notified } = run([muted(firing(100))]);
    expect(notified).toEqual(["1 firing"]);
    expect(state).toMatchObject({ episode: 1, state: "firing", notified: false });
    expect(run([firing(100)]).state?.notified).toBe(true);
  });

  test("the first submission after the window closed notifies once, as the next reminder", () => {
    const { state, notified } = run([muted(firing(100)), muted(firing(100)), firing(100), firing(100)]);
    expect(notified).toEqual(["1 firing", "1 repeat:1"]);
    expect(state).toMatchObject({ notified: true, repeatCount: 1, lastNotifiedMs: nowMs });
    // From then on the sweep reminds at the interval, counting on.
    expect(sweepState(state as AlertState, nowMs + 1000, settings).notify?.kind).toBe("repeat:2");
  });

  test("muted again after being notified: nothing more, and the resolution is still sent", () => {
    const { notified } = run([firing(100), muted(firing(100)), muted(resolved(100, 500))]);
    expect(notified).toEqual(["1 firing", "1 resolved"]);
  });

  test("never notified: no resolved notification, by submission or by the sweep, and no reminder", () => {
    const bySubmission = run([muted(firing(100)), resolved(100, 500)]);
    expect(bySubmission.notified).toEqual(["1 firing"]);
    expect(bySubmission.state?.state).toBe("resolved");
    const state = run([muted(firing(100, nowMs + 5000))]).state as AlertState;
    expect(sweepState(state, nowMs + 4000, settings)).toEqual({ state });
    const swept = sweepState(state, nowMs + 5000, settings);
    expect(swept.notify).toBeUndefined();
    expect(swept.state?.state).toBe("resolved");
  });

  test("a muted episode does not carry over: the next episode is judged by its own submissions", () => {
    const { notified, state } = run([muted(firing(100)), resolved(100, 500), firing(600)]);
    expect(notified).toEqual(["1 firing", "2 firing"]);
    expect(state).toMatchObject({ episode: 2, notified: true });
  });

  test("redelivering every submission, muted or not, notifies nothing more", () => {
    const stream = [muted(firing(100)), firing(150), muted(firing(200)), resolved(200, 300)];
    const once = run(stream);
    expect(once.notified).toEqual(["1 firing", "1 repeat:1", "1 resolved"]);
    const twice = run(stream.flatMap((s) => [s, s]));
    expect(twice.notified).toEqual(once.notified);
    expect(twice.state).toEqual(once.state);
  });
});

describe("rules told of an episode", () => {
  const settings = { resolveTimeoutMs: 10_000_000, repeatIntervalMs: 1000 };
  const both = (submission: Submission) => byRules(submission, "rule-b", "rule-a");

  test("a rule that joins the route while the alert fires is told once, alone, at its next submission", () => {
    const { state, notified } = run([firing(100), both(firing(100)), both(firing(150)), both(firing(160))]);
    expect(notified).toEqual(["1 firing", "1 repeat:1 rule-b"]);
    // The rule told before keeps its reminder time; the next reminder counts on and tells both.
    expect(state).toMatchObject({ toldRuleIds: ["rule-a", "rule-b"], repeatCount: 1, lastNotifiedMs: nowMs });
    expect(sweepState(state as AlertState, nowMs + 1000, settings).notify).toEqual({
      episode: 1,
      kind: "repeat:2",
      ruleIds: ["rule-a", "rule-b"],
    });
  });

  test("the resolution goes to the rules told that it fired and that it names", () => {
    expect(run([firing(100), both(firing(100)), both(resolved(100, 500))]).notified).toEqual([
      "1 firing",
      "1 repeat:1 rule-b",
      "1 resolved",
    ]);
    // rule-b matched only the resolution: it never heard of the firing, so not of its end either.
    expect(run([firing(100), both(resolved(100, 500))]).notified).toEqual(["1 firing", "1 resolved rule-a"]);
    expect(run([firing(100), byRules(resolved(100, 500), "rule-b")]).notified).toEqual(["1 firing"]);
    // The sweep's resolution tells every rule told.
    const state = run([firing(100, nowMs + 10), both(firing(100, nowMs + 10))]).state as AlertState;
    expect(sweepState(state, nowMs + 10, settings).notify).toEqual({
      episode: 1,
      kind: "resolved",
      ruleIds: ["rule-a", "rule-b"],
    });
  });

  test("a muted submission tells no rule; the first unmuted one tells every rule it names", () => {
    const { state, notified } = run([muted(firing(100)), muted(both(firing(100))), both(firing(100))]);
    expect(notified).toEqual(["1 firing", "1 repeat:1"]);
    expect(state?.toldRuleIds).toEqual(["rule-a", "rule-b"]);
    expect(run([firing(100), muted(both(firing(100)))]).state?.toldRuleIds).toEqual(["rule-a"]);
  });

  test("a silenced submission tells no rule of an episode already firing; the first one unsilenced does", () => {
    const joined = run([firing(100), silenced(both(firing(100))), both(firing(100))]);
    expect(joined.notified).toEqual(["1 firing", "1 repeat:1 rule-b"]);
    // An episode that opened muted is not notified by a silenced re-send either.
    const unmuted = run([muted(firing(100)), silenced(firing(100)), firing(100)]);
    expect(unmuted.notified).toEqual(["1 firing", "1 repeat:1"]);
    // A silence at the start does not hold the episode back: its rows are silent with its firing row.
    expect(run([silenced(firing(100))]).state).toMatchObject({ notified: true, toldRuleIds: ["rule-a"] });
  });

  test("reminders name the told rules the latest submission names, none while silenced; the resolution every rule told", () => {
    const bothTold = run([firing(100), both(firing(100))]).state as AlertState;
    const onlyA = applySubmission(bothTold, firing(100)).state as AlertState;
    expect(onlyA).toMatchObject({ toldRuleIds: ["rule-a", "rule-b"], matchedRuleIds: ["rule-a"] });
    expect(sweepState(onlyA, nowMs + 1000, settings).notify).toEqual({
      episode: 1,
      kind: "repeat:2",
      ruleIds: ["rule-a"],
    });
    // A re-send overtaken by a later one (an older end) does not narrow them.
    const withEnd = run([firing(100, nowMs + 9000), both(firing(100, nowMs + 9000))]).state as AlertState;
    expect(applySubmission(withEnd, firing(100, nowMs + 5000)).state?.matchedRuleIds).toEqual([
      "rule-a",
      "rule-b",
    ]);
    // Nobody told is named any more (moved, disabled): no reminder, and the schedule moves on.
    const moved = applySubmission(bothTold, muted(byRules(firing(100), "rule-c"))).state as AlertState;
    const reminded = sweepState(moved, nowMs + 1000, settings);
    expect(reminded.notify).toBeUndefined();
    expect(reminded.state).toMatchObject({ repeatCount: 2, lastNotifiedMs: nowMs + 1000 });
    // Silenced since: no reminder either, until a submission arrives unsilenced.
    const quiet = applySubmission(bothTold, silenced(both(firing(100)))).state as AlertState;
    expect(sweepState(quiet, nowMs + 1000, settings).notify).toBeUndefined();
    const loud = applySubmission(quiet, both(firing(100))).state as AlertState;
    expect(sweepState(loud, nowMs + 1000, settings).notify?.kind).toBe("repeat:2");
    // The sweep's resolution tells every rule told, named or not: a page opened is closed.
    expect(sweepState({ ...moved, endsAtMs: nowMs }, nowMs, settings).notify).toEqual({
      episode: 1,
      kind: "resolved",
      ruleIds: ["rule-a", "rule-b"],
    });
  });

  test("a state from before the rules were kept (null): no rule counts as joined, every rule named is told", () => {
    const before = { ...(run([firing(100)]).state as AlertState), toldRuleIds: null, matchedRuleIds: null };
    expect(run([both(firing(100)), both(resolved(100, 500))], before).notified).toEqual(["1 resolved"]);
    expect(sweepState(before, nowMs + 1000, settings).notify).toEqual({ episode: 1, kind: "repeat:1" });
  });

  test("redelivering every submission tells nothing more", () => {
    const stream = [firing(100), both(firing(100)), both(firing(200)), both(resolved(200, 300))];
    const once = run(stream);
    expect(once.notified).toEqual(["1 firing", "1 repeat:1 rule-b", "1 resolved"]);
    const twice = run(stream.flatMap((s) => [s, s]));
    expect(twice.notified).toEqual(once.notified);
    expect(twice.state).toEqual(once.state);
  });
});

describe("sweepState with other routes of the alert (rules that group otherwise)", () => {
  const settings = { resolveTimeoutMs: 300_000, repeatIntervalMs: 60_000 };
  const endsAtMs = nowMs + 240_000;
  const open = run([firing(100, endsAtMs)]).state as AlertState;

  test("a route left behind by a rule change ends without a notification when due", () => {
    // Known to fire a minute longer under another route: re-sent there since, with later ends.
    const atEnd = sweepState(open, endsAtMs, settings, endsAtMs + 60_000);
    expect(atEnd.notify).toBeUndefined();
    expect(atEnd.state?.state).toBe("resolved");
    // Nor is it reminded of.
    const atReminder = sweepState(open, nowMs + 60_000, settings, endsAtMs + routeSupersededAfterMs + 1);
    expect(atReminder.notify).toBeUndefined();
    expect(atReminder.state?.state).toBe("resolved");
  });

  test("its rules back (the change undone): their next submission opens an episode and notifies", () => {
    const retired = sweepState(open, endsAtMs, settings, endsAtMs + 60_000).state as AlertState;
    const back = applySubmission(retired, firing(100, endsAtMs + 120_000));
    expect(back.notify).toEqual({ episode: 2, kind: "firing" });
  });

  test("routes of one stream end together, each with its resolved notification", () => {
    // The same submissions, so the same end: live, whenever each record was stored.
    const swept = sweepState(open, endsAtMs, settings, endsAtMs);
    expect(swept.notify).toEqual({ episode: 1, kind: "resolved", ruleIds: ["rule-a"] });
    expect(sweepState(open, endsAtMs, settings, endsAtMs + routeSupersededAfterMs).notify?.kind).toBe(
      "resolved",
    );
    // Without end times the resolve timeout counts from each record's storage: a batch apart.
    const noEnd = run([firing(100)]).state as AlertState;
    const dueMs = nowMs + settings.resolveTimeoutMs;
    expect(sweepState(noEnd, dueMs, settings, dueMs + 2_000).notify?.kind).toBe("resolved");
  });

  test("a state not due stays as it is, whatever the other routes", () => {
    expect(sweepState(open, nowMs + 1000, settings, endsAtMs + 500_000)).toEqual({ state: open });
  });
});
