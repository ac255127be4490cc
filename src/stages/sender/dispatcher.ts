/**
 * Delivers claimed notifications: every pending endpoint through its channel, paced per endpoint by
 * the rate limiter, then one statement records the attempts and the statuses decided from them.
 * Group sends the same way, one message per send and endpoint with the send's rows routed there.
 * Either kind is held under leases kept until its outcomes are recorded (lease-keeper.ts).
 */
import type {
  AttemptRecord,
  ClaimedNotification,
  DeliveryStore,
  EndpointWork,
  StatusUpdate,
} from "../../adapters/delivery-store.ts";
import type {
  ClaimedGroupSend,
  GroupAttemptRecord,
  GroupRowStatus,
  GroupStatusUpdate,
  GroupStore,
  SendWork,
} from "../../adapters/group-store.ts";
import type { Channel, DeliveryResult, Endpoint, EndpointType } from "../../channels/types.ts";
import { assert } from "../../core/assert.ts";
import {
  type CarryingEndpoint,
  decideMemberStatuses,
  decideStatus,
  type StatusDecision,
} from "../../core/delivery-status.ts";
import type { GroupMessage } from "../../core/group-payload.ts";
import type { LeaseTiming } from "../../core/lease.ts";
import { type KeyedRateLimiter, RateLimitQueueFullError } from "../../core/rate-limit.ts";
import type { BackoffPolicy } from "../../core/retry.ts";
import { DeadlineError, failureLatch, settleWithin } from "../../runtime/deadline.ts";
import { failureClass } from "../../runtime/failure-class.ts";
import type { Logger } from "../../runtime/log.ts";
import { type LeasedWork, LeaseKeeper, type RenewLeases } from "./lease-keeper.ts";

export interface DispatchCounts {
  delivered: number;
  retryable: number;
  permanent: number;
}

/** What an attempt record holds of one endpoint's result, whichever kind of delivery it was. */
type EndpointOutcome = Omit<AttemptRecord, "notificationId" | "attempt">;

const noWork: EndpointWork = { pending: [], deliveredEarlier: 0, permanentEarlier: 0 };
const noSendWork: SendWork = { pending: [], finished: [] };

/** A delivery that did not start: its lease left no room, or the sender is stopping. Try again. */
const notStarted: DeliveryResult = {
  outcome: "RETRYABLE",
  latencyMs: 0,
  error: "not sent: no room left under the lease, or the sender is stopping",
  notSent: true,
};

/** Transient failures of recording a dispatch's outcomes are retried for a quarter of the lease. */
const recordRetryPauseMs = 250;

export interface DispatcherOptions {
  lease: LeaseTiming;
  /** Where failed renewals and unexpected delivery errors are reported. */
  logger: Logger;
}

export class Dispatcher {
  readonly #latch = failureLatch();
  /**
   * Rejects when recording a dispatch's outcomes did not settle within a lease (a query postgres.js
   * left pending): the stage must exit and be restarted, as the scheduler's deadline does.
   */
  readonly failed = this.#latch.failed;
  #stopping = false;

  constructor(
    private readonly store: DeliveryStore,
    private readonly channels: ReadonlyMap<EndpointType, Channel>,
    private readonly limiter: KeyedRateLimiter,
    private readonly policy: BackoffPolicy,
    private readonly options: DispatcherOptions,
    private readonly groupStore?: GroupStore,
  ) {}

  /**
   * From now on no delivery starts (shutdown): those not started yet end as not sent, so the
   * dispatches in flight record their outcomes promptly instead of sending what they could not record.
   */
  stopStarting(): void {
    this.#stopping = true;
  }

  async dispatchGroups(sends: readonly ClaimedGroupSend[]): Promise<DispatchCounts> {
    const store = this.groupStore;
    if (sends.length === 0) return emptyCounts();
    assert(store !== undefined, "group sends claimed by a dispatcher without a group store");
    return this.#underLeases(
      sends,
      (held) => store.renewLeases(held),
      (leases, counts) => this.#deliverGroups(sends, store, leases, counts),
    );
  }

  /** `known`: the notifications' endpoint work when the claim fetched it already. */
  async dispatch(
    notifications: readonly ClaimedNotification[],
    known?: ReadonlyMap<string, EndpointWork>,
  ): Promise<DispatchCounts> {
    if (notifications.length === 0) return emptyCounts();
    return this.#underLeases(
      notifications,
      (held) => this.store.renewLeases(held),
      (leases, counts) => this.#deliverNotifications(notifications, known, leases, counts),
    );
  }

  /**
   * Runs `deliver` while a LeaseKeeper renews the leases of `leased` (a dispatch may outlast its
   * lease: many rows, slow or rate-limited endpoints; without renewal another sender would claim
   * rows still waiting here and both would deliver them), then records the outcomes `deliver`
   * returns. Renewal goes on until the outcomes are recorded: each delivery started with a quarter of
   * the lease to spare (src/core/lease.ts), but a slow Postgres can take longer than that to record,
   * and another sender claiming the rows meanwhile would deliver them again. Recording is bounded
   * (#record), so the rows are not held forever.
   */
  async #underLeases(
    leased: readonly LeasedWork[],
    renew: RenewLeases,
    deliver: (leases: LeaseKeeper, counts: DispatchCounts) => Promise<() => Promise<void>>,
  ): Promise<DispatchCounts> {
    const counts = emptyCounts();
    const leases = new LeaseKeeper(leased, renew, this.options.lease, this.options.logger);
    try {
      await this.#record(await deliver(leases, counts));
    } finally {
      leases.stop();
    }
    return counts;
  }

  /** Whether a delivery of `rowId` may start now; checked after the rate limiter's wait. */
  #mayStart(leases: LeaseKeeper, rowId: string): boolean {
    return !this.#stopping && leases.mayStart(rowId);
  }

  /**
   * Writes a dispatch's outcomes. Transient failures (a Postgres restart) are retried while a quarter
   * of the lease lasts, so that what was delivered is not delivered again by the next claimer; a
   * write that does not settle within a whole lease fails the stage. A retry after a commit whose
   * answer was lost writes nothing again (the stores' records are idempotent).
   */
  async #record(write: () => Promise<void>): Promise<void> {
    const { leaseMs } = this.options.lease;
    const retryUntilMs = performance.now() + leaseMs / 4;
    for (;;) {
      try {
        return await settleWithin(write(), leaseMs, "recording delivery outcomes");
      } catch (error) {
        if (error instanceof DeadlineError) {
          this.#latch.fail(error);
          throw error;
        }
        if (failureClass(error) !== "transient" || performance.now() + recordRetryPauseMs > retryUntilMs)
          throw error;
        await Bun.sleep(recordRetryPauseMs);
      }
    }
  }

  async #deliverGroups(
    sends: readonly ClaimedGroupSend[],
    store: GroupStore,
    leases: LeaseKeeper,
    counts: DispatchCounts,
  ): Promise<() => Promise<void>> {
    const work = await store.endpointWork(sends);
    const attempts: GroupAttemptRecord[] = [];
    const updates: GroupStatusUpdate[] = [];
    const rows: GroupRowStatus[] = [];
    await Promise.all(
      sends.map(async (send) => {
        const { pending, finished } = work.get(send.id) ?? noSendWork;
        const earlier = {
          deliveredEarlier: finished.filter((f) => f.outcome === "SUCCESS").length,
          permanentEarlier: finished.filter((f) => f.outcome === "PERMANENT").length,
        };
        const { outcomes, results, decision } = await this.#deliverTo(
          pending.map(({ endpoint, memberIds }) => {
            const message: GroupMessage = {
              groupKey: send.groupKey,
              windowNo: send.windowNo,
              incarnation: send.incarnation,
              clientId: send.clientId,
              labels: send.labels,
              alertsMax: send.alertsMax,
              alerts: send.members.filter((member) => memberIds.has(member.id)),
            };
            const deliver = (channel: Channel) =>
              this.#mayStart(leases, send.id)
                ? channel.deliverGroup(endpoint, message)
                : Promise.resolve(notStarted);
            return { endpoint, send: deliver };
          }),
          { ...earlier, attemptsMade: send.attempts },
          counts,
        );
        outcomes.forEach((outcome, i) => {
          const { memberIds } = pending[i] as SendWork["pending"][number];
          attempts.push({ groupSendId: send.id, attempt: send.attempts, alerts: memberIds.size, ...outcome });
        });
        updates.push({ groupSendId: send.id, attempts: send.attempts, decision });
        const carrying: CarryingEndpoint[] = [
          ...pending.map(({ memberIds }, i) => ({ memberIds, result: results[i] })),
          ...finished.map(({ memberIds, outcome }) => ({ memberIds, earlier: outcome })),
        ];
        const ids = send.members.map((member) => member.id);
        for (const [id, { status, error }] of decideMemberStatuses(
          ids,
          carrying,
          decision,
          send.attempts,
          this.policy,
        ))
          rows.push({ groupSendId: send.id, notificationId: id, status, error: error ?? null });
      }),
    );
    return () => store.recordAttempt(attempts, updates, rows);
  }

  async #deliverNotifications(
    notifications: readonly ClaimedNotification[],
    known: ReadonlyMap<string, EndpointWork> | undefined,
    leases: LeaseKeeper,
    counts: DispatchCounts,
  ): Promise<() => Promise<void>> {
    const work = known ?? (await this.store.endpointWork(notifications));
    const attempts: AttemptRecord[] = [];
    const updates: StatusUpdate[] = [];
    await Promise.all(
      notifications.map(async (notification) => {
        const { pending, ...earlier } = work.get(notification.id) ?? noWork;
        const { outcomes, decision } = await this.#deliverTo(
          pending.map((endpoint) => ({
            endpoint,
            send: (channel) =>
              this.#mayStart(leases, notification.id)
                ? channel.deliver(endpoint, notification)
                : Promise.resolve(notStarted),
          })),
          { ...earlier, attemptsMade: notification.attempts },
          counts,
        );
        for (const outcome of outcomes)
          attempts.push({ notificationId: notification.id, attempt: notification.attempts, ...outcome });
        updates.push({ notificationId: notification.id, attempts: notification.attempts, decision });
      }),
    );
    return () => this.store.recordAttempt(attempts, updates);
  }

  /**
   * One notification's or group window's delivery: every pending endpoint at once, then the status
   * its results and the earlier attempts' call for. Counts each result into `counts`.
   */
  async #deliverTo(
    pending: readonly { endpoint: Endpoint; send: (channel: Channel) => Promise<DeliveryResult> }[],
    earlier: { deliveredEarlier: number; permanentEarlier: number; attemptsMade: number },
    counts: DispatchCounts,
  ): Promise<{ outcomes: EndpointOutcome[]; results: DeliveryResult[]; decision: StatusDecision }> {
    const results = await Promise.all(pending.map(({ endpoint, send }) => this.#deliver(endpoint, send)));
    const outcomes = results.map((result, i) => {
      countOutcome(counts, result);
      const { endpoint } = pending[i] as (typeof pending)[number];
      return {
        endpointId: endpoint.id,
        channel: endpoint.type,
        outcome: result.outcome,
        httpStatus: result.httpStatus ?? null,
        smtpReply: result.smtpReply ?? null,
        latencyMs: result.latencyMs,
        error: result.error ?? null,
      };
    });
    return { outcomes, results, decision: decideStatus({ results, ...earlier }, Math.random, this.policy) };
  }

  async #deliver(
    endpoint: Endpoint,
    send: (channel: Channel) => Promise<DeliveryResult>,
  ): Promise<DeliveryResult> {
    const channel = this.channels.get(endpoint.type);
    if (!channel) {
      return {
        outcome: "PERMANENT",
        latencyMs: 0,
        error: `${endpoint.type} is not configured on this sender`,
      };
    }
    try {
      return await this.limiter.run(endpoint.id, () => send(channel));
    } catch (error) {
      // Too many waiting for this endpoint: nothing was sent, try again later.
      if (error instanceof RateLimitQueueFullError) {
        return { outcome: "RETRYABLE", latencyMs: 0, error: error.message, notSent: true };
      }
      // Channels classify every delivery problem; this is a fault of ours (rendering, a broken
      // assumption). It stays this endpoint's retryable result, so the rest of the dispatch is
      // still recorded and not delivered again.
      this.options.logger.error("delivery threw instead of returning a result", {
        endpointId: endpoint.id,
        error,
      });
      return {
        outcome: "RETRYABLE",
        latencyMs: 0,
        error: `delivery failed unexpectedly: ${messageOf(error)}`,
      };
    }
  }
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

const emptyCounts = (): DispatchCounts => ({ delivered: 0, retryable: 0, permanent: 0 });

function countOutcome(counts: DispatchCounts, result: DeliveryResult): void {
  if (result.outcome === "SUCCESS") counts.delivered++;
  else if (result.outcome === "RETRYABLE") counts.retryable++;
  else counts.permanent++;
}
