/**
 * A notification's status after one attempt over its pending endpoints. Pure: the sender applies it.
 * Endpoints already delivered (or permanently refused) in earlier attempts are not pending anymore.
 * An attempt gives up (FAILED) only when it sent something: one whose retryable results all stayed
 * in this process (a full rate-limit queue, a lease with no room left, a sender stopping) is retried
 * whatever the attempts count, so no notification fails without ever reaching its receiver.
 */
import {
  type BackoffPolicy,
  type DeliveryOutcome,
  defaultBackoffPolicy,
  nextAttemptDelayMs,
} from "./retry.ts";

/** What the decision needs of one endpoint's attempt; a channel's DeliveryResult is one. */
export interface EndpointAttempt {
  outcome: DeliveryOutcome;
  error?: string;
  /** The receiver's requested pause; a floor for the next attempt. */
  retryAfterMs?: number;
  /** Nothing left this process for the endpoint (only with RETRYABLE). */
  notSent?: boolean;
}

export interface StatusDecision {
  status: "SENT" | "RETRY" | "FAILED";
  /** Only for RETRY. */
  nextAttemptDelayMs?: number;
  error?: string;
}

export interface AttemptSummary {
  /** This attempt's outcome per pending endpoint. */
  results: readonly EndpointAttempt[];
  /** Endpoints delivered in earlier attempts (a crash may have hit before the status update). */
  deliveredEarlier: number;
  /** Endpoints refused permanently in earlier attempts. */
  permanentEarlier: number;
  /** Attempts including this one. */
  attemptsMade: number;
}

export function decideStatus(
  { results, deliveredEarlier, permanentEarlier, attemptsMade }: AttemptSummary,
  random: () => number,
  policy: BackoffPolicy = defaultBackoffPolicy,
): StatusDecision {
  if (results.length === 0 && permanentEarlier === 0 && deliveredEarlier === 0) {
    return { status: "FAILED", error: "no enabled endpoint" };
  }
  // One pass, no intermediate arrays: this runs once per notification per attempt.
  let firstRetryable: EndpointAttempt | undefined;
  let firstPermanent: EndpointAttempt | undefined;
  let retryAfterMs = 0;
  let retryableSent = false;
  for (const result of results) {
    if (result.outcome === "RETRYABLE") {
      firstRetryable ??= result;
      retryAfterMs = Math.max(retryAfterMs, result.retryAfterMs ?? 0);
      if (result.notSent !== true) retryableSent = true;
    } else if (result.outcome === "PERMANENT") {
      firstPermanent ??= result;
    }
  }
  if (firstRetryable !== undefined) {
    const error = firstRetryable.error ?? "retryable failure";
    if (attemptsMade >= policy.attemptsMax && retryableSent)
      return { status: "FAILED", error: `gave up after ${attemptsMade} attempts: ${error}` };
    return {
      status: "RETRY",
      nextAttemptDelayMs: nextAttemptDelayMs(attemptsMade, retryAfterMs, random, policy),
      error,
    };
  }
  if (firstPermanent !== undefined || permanentEarlier > 0) {
    return {
      status: "FAILED",
      error: firstPermanent?.error ?? "an endpoint refused the notification permanently",
    };
  }
  return { status: "SENT" };
}
