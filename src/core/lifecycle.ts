/**
 * The lifecycle of an Alertmanager alert per (client, scope, alert key) (docs/design/alert-model.md):
 * pure decisions on its state, which the aggregator stores in alert_states together with the
 * notification rows they call for. Times are unix ms.
 *
 *   firing, state absent or resolved  -> a new episode and a `firing` notification; after a
 *                                        resolution only when newer than anything seen, so a
 *                                        redelivered old submission never reopens an episode
 *   firing, state firing              -> last seen and ends-at updated, nothing sent
 *   resolved, state firing            -> resolved and a `resolved` notification, unless it belongs to
 *                                        an older episode (redelivered)
 *   resolved, state absent or resolved -> nothing: the client never heard of it firing
 *   the sweep                         -> resolves firing states whose ends-at or resolve timeout
 *                                        passed, and sends `repeat:<n>` every repeat interval
 */
export type AlertStateName = "firing" | "resolved";

export interface AlertState {
  episode: number;
  state: AlertStateName;
  /** The event time that opened the episode. */
  episodeStartedMs: number;
  /** The newest event time seen for the alert. */
  lastEventMs: number;
  lastSeenMs: number;
  endsAtMs: number | null;
  lastNotifiedMs: number;
  repeatCount: number;
}

export interface Submission {
  status: AlertStateName;
  /** startsAt, or when ingest received it. */
  eventMs: number;
  endsAtMs: number | null;
  nowMs: number;
}

export type NotificationKind = "firing" | "resolved" | `repeat:${number}`;

export interface Transition {
  /** The state to store; undefined: nothing to store (a resolution of an alert never seen firing). */
  state: AlertState | undefined;
  /** The notification to write for it, if any. */
  notify?: { episode: number; kind: NotificationKind };
}

export function applySubmission(current: AlertState | undefined, submission: Submission): Transition {
  const { status, eventMs, endsAtMs, nowMs } = submission;
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
        },
        notify: { episode, kind: "firing" },
      };
    }
    if (current.state === "resolved") return { state: current };
    return {
      state: { ...current, lastEventMs: Math.max(current.lastEventMs, eventMs), lastSeenMs: nowMs, endsAtMs },
    };
  }
  if (current === undefined || current.state === "resolved" || eventMs < current.episodeStartedMs)
    return { state: current };
  return {
    state: resolvedState(current, Math.max(current.lastEventMs, eventMs), nowMs, endsAtMs ?? nowMs),
    notify: { episode: current.episode, kind: "resolved" },
  };
}

export interface SweepSettings {
  resolveTimeoutMs: number;
  repeatIntervalMs: number;
}

/** What the sweep does to a firing state at `nowMs`: resolve it, remind of it, or nothing. */
export function sweepState(current: AlertState, nowMs: number, settings: SweepSettings): Transition {
  if (current.state !== "firing") return { state: current };
  const endsAtPassed = current.endsAtMs !== null && current.endsAtMs <= nowMs;
  if (endsAtPassed || current.lastSeenMs + settings.resolveTimeoutMs <= nowMs) {
    return {
      state: resolvedState(current, current.lastEventMs, nowMs, endsAtPassed ? current.endsAtMs : nowMs),
      notify: { episode: current.episode, kind: "resolved" },
    };
  }
  if (current.lastNotifiedMs + settings.repeatIntervalMs <= nowMs) {
    const repeatCount = current.repeatCount + 1;
    return {
      state: { ...current, repeatCount, lastNotifiedMs: nowMs },
      notify: { episode: current.episode, kind: `repeat:${repeatCount}` },
    };
  }
  return { state: current };
}

function resolvedState(
  current: AlertState,
  lastEventMs: number,
  nowMs: number,
  endsAtMs: number | null,
): AlertState {
  return { ...current, state: "resolved", lastEventMs, lastSeenMs: nowMs, endsAtMs };
}
