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

/** An endpoint of a group send: the rows it carries, and this attempt's result or an earlier outcome. */
export interface CarryingEndpoint {
  memberIds: ReadonlySet<string>;
  result?: EndpointAttempt;
  earlier?: "SUCCESS" | "PERMANENT";
}

/**
 * The status of each row of a group send after an attempt, from its own endpoints only: a row is SENT
 * when the endpoints its rules route to got it, FAILED for their refusals or when it has none, and
 * not for another rule's endpoint in the same message. While one of its endpoints is to be retried
 * it follows the send (RETRY, or FAILED once the send gives up), since the send drives the retries.
 */
export function decideMemberStatuses(
  memberIds: readonly string[],
  endpoints: readonly CarryingEndpoint[],
  send: StatusDecision,
  attemptsMade: number,
  policy: BackoffPolicy = defaultBackoffPolicy,
): Map<string, { status: StatusDecision["status"]; error?: string }> {
  const statuses = new Map<string, { status: StatusDecision["status"]; error?: string }>();
  for (const id of memberIds) {
    const results: EndpointAttempt[] = [];
    let deliveredEarlier = 0;
    let permanentEarlier = 0;
    for (const endpoint of endpoints) {
      if (!endpoint.memberIds.has(id)) continue;
      if (endpoint.result !== undefined) results.push(endpoint.result);
      else if (endpoint.earlier === "SUCCESS") deliveredEarlier++;
      else if (endpoint.earlier === "PERMANENT") permanentEarlier++;
    }
    const own = decideStatus({ results, deliveredEarlier, permanentEarlier, attemptsMade }, () => 0, policy);
    statuses.set(
      id,
      own.status === "RETRY"
        ? { status: send.status, error: send.error }
        : { status: own.status, error: own.error },
    );
  }
  return statuses;
}
