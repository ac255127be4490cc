/**
 * The lifecycle of an Alertmanager alert per (client, scope, alert key, route) (docs/design/alert-model.md):
 * pure decisions on its state, which the aggregator stores in alert_states together with the
 * notification rows they call for. Times are unix ms.
 *
 *   firing, state absent or resolved  -> a new episode and a `firing` notification; after a
 *                                        resolution only when newer than anything seen, so a
 *                                        redelivered or overtaken old submission never reopens one
 *                                        (muted: the row is written SILENCED and the episode is not
 *                                        notified)
 *   firing, state firing              -> last seen, ends-at and policy updated, nothing sent; when the
 *                                        episode is not notified and this submission is not muted (its
 *                                        rules' mute windows closed), `repeat:<n>` and it is notified;
 *                                        when it names rules not told of the episode yet (a rule added
 *                                        or moved onto the route while the alert fires), `repeat:<n>`
 *                                        for those rules alone
 *   resolved, state firing            -> resolved and a `resolved` notification to the rules told of
 *                                        the episode that it names (unless the policy skips them or the
 *                                        episode was never notified), unless it is older than the
 *                                        episode or than the newest firing submission
 *   resolved, state absent or resolved -> resolved, nothing sent (the client never heard of it
 *                                        firing), but its times are kept
 *   the sweep                         -> resolves firing states whose ends-at or resolve timeout
 *                                        passed (a `resolved` notification to every rule told), and
 *                                        sends `repeat:<n>` every repeat interval to notified episodes
 *                                        only, to the rules told that the latest submission names,
 *                                        none while it was silenced
 *
 * Muting is judged per submission (the evaluator tests the windows at processing time), like
 * Alertmanager's mute_time_intervals: the row a muted submission calls for is written SILENCED, and
 * only that row. An episode that opened muted is notified by the first submission that arrives after
 * the window closed; until then it gets no reminder and no resolution, as the client never heard of it.
 * A silence (silenced_by) of a submission to an episode already firing tells nobody, like a mute;
 * otherwise silences are not part of these decisions: an episode's later rows stay silent with its
 * firing row (src/adapters/notification-store.ts).
 *
 * The aggregator processes several batches at once, so the resolution of an alert can be stored
 * before the firing submission that preceded it. A resolution therefore always records the newest
 * time it covers (its startsAt and endsAt), also for an alert never seen firing (episode 0), and a
 * firing submission opens an episode only when newer: whichever order the two are stored in, the
 * alert ends resolved. Stored in order the client hears of the firing and of its resolution; stored
 * the other way round it hears of neither, as the episode was over before it was known.
 */
export type AlertStateName = "firing" | "resolved";

/** What the client's rules ask of the alert's notifications (AlertMatched.policy). */
export interface LifecyclePolicy {
  sendResolved: boolean;
  /** null: the aggregator's default. */
  repeatIntervalMs: number | null;
}

export const defaultPolicy: LifecyclePolicy = { sendResolved: true, repeatIntervalMs: null };

export interface AlertState {
  /** 0 for an alert only ever seen resolved. */
  episode: number;
  state: AlertStateName;
  /** The event time that opened the episode. */
  episodeStartedMs: number;
  /** The newest event time seen for the alert; for a resolution also its end time. */
  lastEventMs: number;
  lastSeenMs: number;
  endsAtMs: number | null;
  lastNotifiedMs: number;
  repeatCount: number;
  /** The policy of the latest submission: the sweep follows it. */
  policy: LifecyclePolicy;
  /** Whether a notification of the episode was written unmuted: false while only muted ones were. */
  notified: boolean;
  /**
   * The rules the episode's unmuted notifications named (sorted): those told that it fires. null: not
   * known (a state stored before migration 000023 without its rows), every rule counts as told.
   */
  toldRuleIds: readonly string[] | null;
  /**
   * The rules the latest submission stored named (sorted): those the alert is routed to now. A rule
   * disabled, deleted or moved to another route since it was told is left out of reminders. null:
   * not known (before migration 000023).
   */
  matchedRuleIds: readonly string[] | null;
  /** Whether the latest submission stored was silenced: no reminders while it was. */
  silenced: boolean;
}

export interface Submission {
  status: AlertStateName;
  /** startsAt, or when ingest received it. */
  eventMs: number;
  endsAtMs: number | null;
  nowMs: number;
  policy: LifecyclePolicy;
  /** A mute window of the client's rules held when the evaluator processed it (muted_by_rule). */
  muted: boolean;
  /**
   * A silence of the client held (silenced_by): like a mute, it tells no rule of an episode already
   * firing; an episode it opens is notified, its rows silent with its firing row.
   */
  silenced: boolean;
  /** The client's rules on the alert's route that matched it (AlertMatched.rule_ids). */
  ruleIds: readonly string[];
}

export type NotificationKind = "firing" | "resolved" | `repeat:${number}`;

export interface Transition {
  /** The state to store; the current one (same object) or undefined: nothing to store. */
  state: AlertState | undefined;
  /**
   * The notification to write for it, if any. `ruleIds`: the rules it names, when not all of the
   * submission's (for the sweep: when known, else the episode's first notification's).
   */
  notify?: { episode: number; kind: NotificationKind; ruleIds?: readonly string[] };
}

const sortedUnique = (ids: Iterable<string>): string[] => [...new Set(ids)].sort();

export function applySubmission(current: AlertState | undefined, submission: Submission): Transition {
  const { status, eventMs, endsAtMs, nowMs, policy, muted, silenced, ruleIds } = submission;
  const matchedRuleIds = sortedUnique(ruleIds);
  if (status === "firing") {
    if (current === undefined || (current.state === "resolved" && eventMs > current.lastEventMs)) {
      const episode = (current?.episode ?? 0) + 1;
      return {
        state: {
          episode,
          state: "firing",
          episodeStartedMs: eventMs,
          lastEventMs: eventMs,
          lastSeenMs: nowMs,
          endsAtMs,
          lastNotifiedMs: nowMs,
          repeatCount: 0,
          policy,
          notified: !muted,
          toldRuleIds: muted ? [] : matchedRuleIds,
          matchedRuleIds,
          silenced,
        },
        notify: { episode, kind: "firing" },
      };
    }
    if (current.state === "resolved") return { state: current };
    // A re-send overtaken by a later one (older start, or older end) tells what the alert was routed
    // to before: it must not narrow the rules reminded nor lift a silence.
    const overtaken =
      eventMs < current.lastEventMs ||
      (endsAtMs !== null && current.endsAtMs !== null && endsAtMs < current.endsAtMs);
    const seen: AlertState = {
      ...current,
      lastEventMs: Math.max(current.lastEventMs, eventMs),
      lastSeenMs: nowMs,
      // An overtaken re-send carries an older end time: it must not end the alert early.
      endsAtMs:
        endsAtMs === null || current.endsAtMs === null ? endsAtMs : Math.max(current.endsAtMs, endsAtMs),
      policy,
      ...(overtaken ? {} : { matchedRuleIds, silenced }),
    };
    if (muted || silenced) return { state: seen };
    const repeatCount = current.repeatCount + 1;
    if (!current.notified) {
      // The mute window closed while the episode fires: the client hears of it now, as a reminder (its
      // firing row stays the record of the muted start), and the repeat interval counts from here.
      return {
        state: {
          ...seen,
          notified: true,
          repeatCount,
          lastNotifiedMs: nowMs,
          toldRuleIds: matchedRuleIds,
        },
        notify: { episode: current.episode, kind: `repeat:${repeatCount}` },
      };
    }
    const told = current.toldRuleIds;
    const joined = told === null ? [] : sortedUnique(ruleIds.filter((id) => !told.includes(id)));
    if (told === null || joined.length === 0) return { state: seen };
    // Rules that joined the route while the alert fires hear of it now, as Alertmanager notifies a new
    // route at its next flush; the rules told before are not told again, and their reminders keep
    // their time.
    return {
      state: { ...seen, repeatCount, toldRuleIds: sortedUnique([...told, ...joined]) },
      notify: { episode: current.episode, kind: `repeat:${repeatCount}`, ruleIds: joined },
    };
  }
  const coveredMs = Math.max(eventMs, endsAtMs ?? eventMs);
  if (current === undefined) {
    return {
      state: {
        episode: 0,
        state: "resolved",
        episodeStartedMs: eventMs,
        lastEventMs: coveredMs,
        lastSeenMs: nowMs,
        endsAtMs: endsAtMs ?? nowMs,
        lastNotifiedMs: nowMs,
        repeatCount: 0,
        policy,
        notified: false,
        toldRuleIds: [],
        matchedRuleIds,
        silenced,
      },
    };
  }
  if (current.state === "resolved") {
    if (coveredMs <= current.lastEventMs) return { state: current };
    return { state: { ...current, lastEventMs: coveredMs, lastSeenMs: nowMs } };
  }
  // Older than the episode, or than a firing submission that started after this resolution ended:
  // the alert fired again since, so the resolution is of the past.
  if (eventMs < current.episodeStartedMs || coveredMs < current.lastEventMs) return { state: current };
  const state = {
    ...resolvedState(current, Math.max(current.lastEventMs, coveredMs), nowMs, endsAtMs ?? nowMs),
    matchedRuleIds,
  };
  if (!policy.sendResolved || !current.notified) return { state };
  // Only the rules told that it fired hear that it resolved (Alertmanager resolves only what it sent).
  const told = current.toldRuleIds;
  if (told === null) return { state, notify: { episode: current.episode, kind: "resolved" } };
  const tell = sortedUnique(ruleIds.filter((id) => told.includes(id)));
  if (tell.length === 0) return { state };
  const notify = { episode: current.episode, kind: "resolved" as const };
  return {
    state,
    notify: tell.length === matchedRuleIds.length ? notify : { ...notify, ruleIds: tell },
  };
}

export interface SweepSettings {
  resolveTimeoutMs: number;
  /** For states whose policy has none. */
  repeatIntervalMs: number;
}

/**
 * How much longer another route of the same alert must be known to fire for a route to count as left
 * behind. The routes of one alert get the same submissions (records of one AlertNew), so with an end
 * time given they agree exactly, however late each record is stored; without one (the resolve
 * timeout counts from when a record was stored) a batch or two apart, seconds. A route a rule change
 * left behind gets no more submissions while the others get every re-send (Prometheus re-sends every
 * minute, each with a later end).
 */
export const routeSupersededAfterMs = 30_000;

/** Until when a firing state's alert is known to fire: its end time, else its resolve timeout. */
export function firesUntilMs(state: AlertState, settings: SweepSettings): number {
  return state.endsAtMs ?? state.lastSeenMs + settings.resolveTimeoutMs;
}

/**
 * What the sweep does to a firing state at `nowMs`: resolve it, remind of it, or nothing.
 * `siblingFiresUntilMs`: the latest firesUntilMs of the alert's other routes (undefined: none). A
 * state due whose alert is known to fire well past it under another route is a route a rule change
 * left behind (the rules now group otherwise): it ends without a notification, since the alert did
 * not resolve, and reminds of nothing, as Alertmanager forgets a route's groups when its
 * configuration changes. It keeps no event time, so that if its rules come back (the change undone)
 * their next submission opens a new episode and notifies them again.
 */
export function sweepState(
  current: AlertState,
  nowMs: number,
  settings: SweepSettings,
  siblingFiresUntilMs?: number,
): Transition {
  if (current.state !== "firing") return { state: current };
  const endsAtPassed = current.endsAtMs !== null && current.endsAtMs <= nowMs;
  const due = endsAtPassed || current.lastSeenMs + settings.resolveTimeoutMs <= nowMs;
  const repeatIntervalMs = current.policy.repeatIntervalMs ?? settings.repeatIntervalMs;
  const remind = current.notified && current.lastNotifiedMs + repeatIntervalMs <= nowMs;
  const leftBehind =
    siblingFiresUntilMs !== undefined &&
    siblingFiresUntilMs > firesUntilMs(current, settings) + routeSupersededAfterMs;
  if ((due || remind) && leftBehind)
    return { state: { ...current, state: "resolved", lastEventMs: current.episodeStartedMs - 1 } };
  if (due) {
    // Every rule told that it fires hears that it ended: an incident opened by a page is closed.
    const told = current.toldRuleIds ?? current.matchedRuleIds;
    return {
      state: { ...current, state: "resolved", endsAtMs: endsAtPassed ? current.endsAtMs : nowMs },
      ...(current.policy.sendResolved && current.notified
        ? {
            notify: {
              episode: current.episode,
              kind: "resolved" as const,
              ...(told === null || told.length === 0 ? {} : { ruleIds: told }),
            },
          }
        : {}),
    };
  }
  if (remind) {
    const repeatCount = current.repeatCount + 1;
    const tell = rulesToRemind(current);
    // Silenced, or nobody left to remind (every rule told was disabled or moved since): the schedule
    // moves on without a row.
    const heard = !current.silenced && (tell === undefined || tell.length > 0);
    return {
      state: { ...current, repeatCount, lastNotifiedMs: nowMs },
      ...(heard
        ? {
            notify: {
              episode: current.episode,
              kind: `repeat:${repeatCount}` as const,
              ...(tell === undefined ? {} : { ruleIds: tell }),
            },
          }
        : {}),
    };
  }
  return { state: current };
}

/**
 * The rules a reminder names: those told that the episode fires and still routed to it (the latest
 * submission names them). undefined: neither is known, the row copies the episode's first one.
 */
function rulesToRemind(state: AlertState): readonly string[] | undefined {
  const { toldRuleIds: told, matchedRuleIds: matched } = state;
  if (told === null) return matched ?? undefined;
  if (matched === null) return told;
  return told.filter((id) => matched.includes(id));
}

function resolvedState(
  current: AlertState,
  lastEventMs: number,
  nowMs: number,
  endsAtMs: number | null,
): AlertState {
  return { ...current, state: "resolved", lastEventMs, lastSeenMs: nowMs, endsAtMs };
}
