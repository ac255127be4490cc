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
  /** Per row, until when its lease surely holds; -Infinity once another sender holds it. */
  readonly #heldUntilMs = new Map<string, number>();
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
    for (const row of rows) this.#heldUntilMs.set(row.id, row.leasedAtMs + timing.leaseMs);
    this.#timer = setInterval(() => {
      this.#renewal ??= this.#renewOnce().finally(() => {
        this.#renewal = undefined;
      });
    }, renewEveryMs(timing));
  }

  mayStart(rowId: string): boolean {
    return leaseAllowsStart(this.timing, this.#heldUntilMs.get(rowId) ?? -Infinity, this.nowMs());
  }

  /**
   * Stops renewing (the deliveries are over). A renewal still in flight is not waited for: it may
   * never settle, and once the outcomes are recorded it matches no row (it fences on SENDING).
   */
  stop(): void {
    clearInterval(this.#timer);
  }

  async #renewOnce(): Promise<void> {
    const held = this.rows.filter((row) => this.#heldUntilMs.get(row.id) !== -Infinity);
    if (held.length === 0) return;
    const sentAtMs = this.nowMs();
    try {
      const renewed = await this.renew(held);
      for (const row of held)
        this.#heldUntilMs.set(row.id, renewed.has(row.id) ? sentAtMs + this.timing.leaseMs : -Infinity);
    } catch (error) {
      // The leases still hold until they run out; deliveries stop starting before that.
      this.logger.warn("renewing leases failed", { rows: held.length, error });
    }
  }
}
