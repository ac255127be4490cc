/**
 * A notification's status after one attempt over its pending endpoints. Pure: the sender applies it.
 * Endpoints already delivered (or permanently refused) in earlier attempts are not pending anymore.
 */
import type { DeliveryResult } from "../channels/types.ts";
import { type BackoffPolicy, defaultBackoffPolicy, nextAttemptDelayMs } from "./retry.ts";

export interface StatusDecision {
  status: "SENT" | "RETRY" | "FAILED";
  /** Only for RETRY. */
  nextAttemptDelayMs?: number;
  error?: string;
}

export interface AttemptSummary {
  /** This attempt's outcome per pending endpoint. */
  results: readonly DeliveryResult[];
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
  const retryable = results.filter((r) => r.outcome === "RETRYABLE");
  const permanent = results.filter((r) => r.outcome === "PERMANENT");
  if (retryable.length > 0) {
    const error = retryable[0]?.error ?? "retryable failure";
    if (attemptsMade >= policy.attemptsMax)
      return { status: "FAILED", error: `gave up after ${attemptsMade} attempts: ${error}` };
    const retryAfterMs = Math.max(0, ...retryable.map((r) => r.retryAfterMs ?? 0));
    return {
      status: "RETRY",
      nextAttemptDelayMs: nextAttemptDelayMs(attemptsMade, retryAfterMs, random, policy),
      error,
    };
  }
  if (permanent.length > 0 || permanentEarlier > 0) {
    return {
      status: "FAILED",
      error: permanent[0]?.error ?? "an endpoint refused the notification permanently",
    };
  }
  return { status: "SENT" };
}
