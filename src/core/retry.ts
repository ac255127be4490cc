/**
 * Delivery outcome decisions, pure: what one attempt's result means (done, try again later, give up)
 * and when the next attempt should happen. The channels classify with these; the sender schedules
 * with `nextAttemptDelayMs` (through decideStatus, core/delivery-status.ts).
 */

/** The closed list of per-attempt outcomes; mirrors the CHECK on deliveries.outcome. */
export type DeliveryOutcome = "SUCCESS" | "RETRYABLE" | "PERMANENT";

export interface Decision {
  outcome: DeliveryOutcome;
  /** Present only when the receiver asked for a pause (Retry-After); already capped. */
  retryAfterMs?: number;
  /** Short, log-safe explanation, stored in deliveries.error for anything but SUCCESS. */
  reason: string;
}

/** A receiver may not park a notification longer than this, whatever its Retry-After says. */
export const retryAfterCapMs = 60 * 60 * 1000;

/**
 * HTTP status -> decision.
 * - 2xx SUCCESS.
 * - 408, 425, 429 and 5xx RETRYABLE, except 501 (Not Implemented) and 505 (HTTP Version Not
 *   Supported): those describe what the receiver can never do, so retrying cannot help -> PERMANENT.
 * - 3xx PERMANENT: redirects are not followed blindly (the HTTP transport follows 307/308 itself,
 *   after re-checking the SSRF guard; whatever reaches this function was not followed).
 * - 1xx and every other 4xx PERMANENT: a final 1xx is a protocol violation, a 4xx a rejected request.
 */
export function classifyHttpStatus(status: number, headers: Headers, nowMs = Date.now()): Decision {
  if (!Number.isInteger(status) || status < 100 || status > 599) {
    throw new RangeError(`not an HTTP status: ${status}`);
  }
  if (status >= 200 && status <= 299) return { outcome: "SUCCESS", reason: `HTTP ${status}` };
  if (status === 501 || status === 505) return { outcome: "PERMANENT", reason: `HTTP ${status}` };
  if (status === 408 || status === 425 || status === 429 || status >= 500) {
    const retryAfterMs = parseRetryAfterMs(headers.get("retry-after"), nowMs);
    const reason = `HTTP ${status}`;
    return retryAfterMs === undefined
      ? { outcome: "RETRYABLE", reason }
      : { outcome: "RETRYABLE", retryAfterMs, reason };
  }
  if (status >= 300 && status <= 399) {
    return { outcome: "PERMANENT", reason: `HTTP ${status} redirect not followed` };
  }
  return { outcome: "PERMANENT", reason: `HTTP ${status}` };
}

/**
 * Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date. Returns milliseconds capped at
 * `retryAfterCapMs`, 0 for a date in the past, undefined when absent or unparseable.
 */
export function parseRetryAfterMs(value: string | null, nowMs: number): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Math.min(Number(trimmed) * 1000, retryAfterCapMs);
  // Only HTTP-dates: Date.parse would also accept "5" or "2024", which are not dates here.
  if (!/^[A-Za-z]{3},? /.test(trimmed)) return undefined;
  const dateMs = Date.parse(trimmed);
  if (Number.isNaN(dateMs)) return undefined;
  return Math.min(Math.max(dateMs - nowMs, 0), retryAfterCapMs);
}

/** Transport failures that say nothing about the request itself, so trying again can succeed. */
const retryableNetworkCodes: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  ECONNABORTED: "connection aborted",
  EPIPE: "connection closed while sending",
  ETIMEDOUT: "timed out",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ENOTFOUND: "DNS lookup failed",
  EAI_AGAIN: "DNS lookup failed temporarily",
  ESERVFAIL: "DNS server failure",
};

/**
 * A thrown fetch/dns/socket error -> decision. Timeouts, refused or reset connections and DNS
 * failures are RETRYABLE. Anything unrecognised (TLS errors included) is RETRYABLE too: the
 * attempt bound stops it, whereas a wrong PERMANENT would silently lose a notification.
 */
export function classifyNetworkError(error: unknown): Decision {
  const name = error instanceof Error ? error.name : "";
  if (name === "TimeoutError") return { outcome: "RETRYABLE", reason: "timed out" };
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string" && code in retryableNetworkCodes) {
    return { outcome: "RETRYABLE", reason: `${retryableNetworkCodes[code]} (${code})` };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { outcome: "RETRYABLE", reason: `transport error: ${message.slice(0, 200)}` };
}

/** SMTP reply code -> decision (RFC 5321 §4.2.1): 2yz SUCCESS, 4yz transient, 5yz permanent. */
export function classifySmtpReply(code: number, reply: string): Decision {
  const reason = `SMTP ${reply.slice(0, 200)}`;
  if (code >= 200 && code <= 299) return { outcome: "SUCCESS", reason };
  if (code >= 400 && code <= 499) return { outcome: "RETRYABLE", reason };
  if (code >= 500 && code <= 599) return { outcome: "PERMANENT", reason };
  // 1yz/3yz as a final answer means the dialogue went wrong, not that the message was refused.
  return { outcome: "RETRYABLE", reason: `unexpected ${reason}` };
}

export interface BackoffPolicy {
  baseDelayMs: number;
  delayCapMs: number;
  /** Attempts after which a still-failing notification becomes FAILED. */
  attemptsMax: number;
}

export const defaultBackoffPolicy: BackoffPolicy = {
  baseDelayMs: 1_000,
  delayCapMs: 15 * 60 * 1000,
  attemptsMax: 8,
};

/**
 * Delay before attempt `attempt + 1`, given `attempt` attempts already made (1-based).
 * Full jitter (uniform in [0, min(cap, base * 2^(attempt-1)))) spreads retries of a burst that
 * failed together; a receiver's Retry-After is a floor, never shortened by the jitter.
 * `random` returns [0, 1), injected so tests are deterministic.
 */
export function nextAttemptDelayMs(
  attempt: number,
  retryAfterMs: number | undefined,
  random: () => number,
  policy: BackoffPolicy = defaultBackoffPolicy,
): number {
  if (!Number.isInteger(attempt) || attempt < 1) throw new RangeError(`attempt must be >= 1: ${attempt}`);
  // Exponent clamped so 2 ** n stays finite for absurd attempt counts.
  const ceilingMs = Math.min(policy.delayCapMs, policy.baseDelayMs * 2 ** Math.min(attempt - 1, 50));
  const jitteredMs = Math.floor(random() * ceilingMs);
  return Math.max(jitteredMs, retryAfterMs ?? 0);
}
