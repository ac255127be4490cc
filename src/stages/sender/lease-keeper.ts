/**
 * Holds the leases of one dispatch's rows (notifications or group sends) until their outcomes are
 * recorded: renews them every sixth of the lease (src/core/lease.ts), and says whether a delivery may
 * start now. A dispatch may outlast the lease (many rows, slow or rate-limited endpoints); without
 * renewal another sender would claim a row still waiting here and both would deliver it, which only
 * webhooks deduplicate (by Idempotency-Key).
 */
import { type LeaseTiming, leaseAllowsStart, renewEveryMs } from "../../core/lease.ts";
import type { Logger } from "../../runtime/log.ts";

export interface LeasedWork {
  id: string;
  /** The claim's attempts count: a renewal fences on it, as the status update does. */
  attempts: number;
  /** Local time (performance.now()) just before the statement that leased the row. */
  leasedAtMs: number;
}

/** Renews the leases of `rows` still held (by id and attempts); returns the ids renewed. */
export type RenewLeases = (rows: readonly LeasedWork[]) => Promise<Set<string>>;

export class LeaseKeeper {
  /** Until when the leases surely hold: they are taken, and renewed, together. */
  #heldUntilMs: number;
  /** Rows another sender holds now: none of their deliveries may start. */
  readonly #lost = new Set<string>();
  readonly #timer: ReturnType<typeof setInterval>;
  /** At most one renewal at a time: one that never settles stops renewal, and the leases run out. */
  #renewal: Promise<void> | undefined;

  constructor(
    private readonly rows: readonly LeasedWork[],
    private readonly renew: RenewLeases,
    private readonly timing: LeaseTiming,
    private readonly logger: Logger,
    private readonly nowMs: () => number = () => performance.now(),
  ) {
    let leasedAtMs = Infinity;
    for (const row of rows) leasedAtMs = Math.min(leasedAtMs, row.leasedAtMs);
    this.#heldUntilMs = leasedAtMs + timing.leaseMs;
    this.#timer = setInterval(() => {
      this.#renewal ??= this.#renewOnce().finally(() => {
        this.#renewal = undefined;
      });
    }, renewEveryMs(timing));
  }

  mayStart(rowId: string): boolean {
    return !this.#lost.has(rowId) && leaseAllowsStart(this.timing, this.#heldUntilMs, this.nowMs());
  }

  /**
   * Stops renewing (the outcomes are recorded, or will not be). A renewal still in flight is not waited for: it may
   * never settle, and once the outcomes are recorded it matches no row (it fences on SENDING).
   */
  stop(): void {
    clearInterval(this.#timer);
  }

  async #renewOnce(): Promise<void> {
    const held = this.rows.filter((row) => !this.#lost.has(row.id));
    if (held.length === 0) return;
    const sentAtMs = this.nowMs();
    try {
      const renewed = await this.renew(held);
      for (const row of held) if (!renewed.has(row.id)) this.#lost.add(row.id);
      this.#heldUntilMs = sentAtMs + this.timing.leaseMs;
    } catch (error) {
      // The leases still hold until they run out; deliveries stop starting before that.
      this.logger.warn("renewing leases failed", { rows: held.length, error });
    }
  }
}
