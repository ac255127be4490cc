/**
 * A bound on work that may never settle. postgres.js can leave a query pending for good when its
 * connection is killed mid-query; a loop awaiting it would stall silently. Such work is not retried
 * in the same process (its connections may be broken): the caller fails the stage, which exits and
 * is restarted, resuming from what is durable.
 */
export class DeadlineError extends Error {
  constructor(
    readonly what: string,
    readonly timeoutMs: number,
  ) {
    super(`${what} did not settle within ${timeoutMs} ms`);
    this.name = "DeadlineError";
  }
}

/** `work`, or a DeadlineError once `timeoutMs` passed without it settling. */
export function settleWithin<R>(work: Promise<R>, timeoutMs: number, what: string): Promise<R> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(what, timeoutMs)), timeoutMs);
  });
  return Promise.race([work, timedOut]).finally(() => clearTimeout(timer));
}

/**
 * How background work reports that it gave up: `failed` rejects once `fail` is called. It is marked
 * handled, so a failure nobody awaits yet is not an unhandled rejection.
 */
export function failureLatch(): { failed: Promise<never>; fail: (error: unknown) => void } {
  let fail: (error: unknown) => void = () => {};
  const failed = new Promise<never>((_, reject) => {
    fail = reject;
  });
  failed.catch(() => {});
  return { failed, fail };
}
