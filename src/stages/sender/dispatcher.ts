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
  GroupStatusUpdate,
  GroupStore,
  SendWork,
} from "../../adapters/group-store.ts";
import type { Channel, DeliveryResult, Endpoint, EndpointType } from "../../channels/types.ts";
import { assert } from "../../core/assert.ts";
import { decideStatus, type StatusDecision } from "../../core/delivery-status.ts";
import type { GroupMessage } from "../../core/group-payload.ts";
import type { LeaseTiming } from "../../core/lease.ts";
import { type KeyedRateLimiter, RateLimitQueueFullError } from "../../core/rate-limit.ts";
import type { BackoffPolicy } from "../../core/retry.ts";
import type { Logger } from "../../runtime/log.ts";
import { type LeasedWork, LeaseKeeper, type RenewLeases } from "./lease-keeper.ts";

export interface DispatchCounts {
  delivered: number;
  retryable: number;
  permanent: number;
}

/** What an attempt record holds of one endpoint's result, whichever kind of delivery it was. */
type EndpointOutcome = Omit<AttemptRecord, "notificationId">;

const noWork: EndpointWork = { pending: [], deliveredEarlier: 0, permanentEarlier: 0 };
const noSendWork: SendWork = { pending: [], deliveredEarlier: 0, permanentEarlier: 0 };

/** A delivery its lease did not leave time for: nothing went out, try again. */
const leaseTooShort: DeliveryResult = {
  outcome: "RETRYABLE",
  latencyMs: 0,
  error: "not sent: the lease could not be renewed in time",
};

export interface DispatcherLeases {
  timing: LeaseTiming;
  /** Where a failed renewal is reported. */
  logger: Logger;
}

export class Dispatcher {
  constructor(
    private readonly store: DeliveryStore,
    private readonly channels: ReadonlyMap<EndpointType, Channel>,
    private readonly limiter: KeyedRateLimiter,
    private readonly policy: BackoffPolicy,
    private readonly leases: DispatcherLeases,
    private readonly groupStore?: GroupStore,
  ) {}

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
   * rows still waiting here and both would deliver them).
   */
  async #underLeases(
    leased: readonly LeasedWork[],
    renew: RenewLeases,
    deliver: (leases: LeaseKeeper, counts: DispatchCounts) => Promise<void>,
  ): Promise<DispatchCounts> {
    const counts = emptyCounts();
    const leases = new LeaseKeeper(leased, renew, this.leases.timing, this.leases.logger);
    try {
      await deliver(leases, counts);
    } finally {
      await leases.stop();
    }
    return counts;
  }

  async #deliverGroups(
    sends: readonly ClaimedGroupSend[],
    store: GroupStore,
    leases: LeaseKeeper,
    counts: DispatchCounts,
  ): Promise<void> {
    const work = await store.endpointWork(sends);
    const attempts: GroupAttemptRecord[] = [];
    const updates: GroupStatusUpdate[] = [];
    await Promise.all(
      sends.map(async (send) => {
        const { pending, ...earlier } = work.get(send.id) ?? noSendWork;
        const { outcomes, decision } = await this.#deliverTo(
          pending.map(({ endpoint, memberIds }) => {
            const message: GroupMessage = {
              groupKey: send.groupKey,
              windowNo: send.windowNo,
              clientId: send.clientId,
              labels: send.labels,
              alertsMax: send.alertsMax,
              alerts: send.members.filter((member) => memberIds.has(member.id)),
            };
            // Checked once the rate limiter lets it go: the wait there may have been long.
            const deliver = (channel: Channel) =>
              leases.mayStart(send.id)
                ? channel.deliverGroup(endpoint, message)
                : Promise.resolve(leaseTooShort);
            return { endpoint, send: deliver };
          }),
          { ...earlier, attemptsMade: send.attempts },
          counts,
        );
        outcomes.forEach((outcome, i) => {
          const { memberIds } = pending[i] as SendWork["pending"][number];
          attempts.push({ groupSendId: send.id, alerts: memberIds.size, ...outcome });
        });
        updates.push({ groupSendId: send.id, attempts: send.attempts, decision });
      }),
    );
    await store.recordAttempt(attempts, updates);
  }

  async #deliverNotifications(
    notifications: readonly ClaimedNotification[],
    known: ReadonlyMap<string, EndpointWork> | undefined,
    leases: LeaseKeeper,
    counts: DispatchCounts,
  ): Promise<void> {
    const work = known ?? (await this.store.endpointWork(notifications));
    const attempts: AttemptRecord[] = [];
    const updates: StatusUpdate[] = [];
    await Promise.all(
      notifications.map(async (notification) => {
        const { pending, ...earlier } = work.get(notification.id) ?? noWork;
        const { outcomes, decision } = await this.#deliverTo(
          pending.map((endpoint) => ({
            endpoint,
            // Checked once the rate limiter lets it go: the wait there may have been long.
            send: (channel) =>
              leases.mayStart(notification.id)
                ? channel.deliver(endpoint, notification)
                : Promise.resolve(leaseTooShort),
          })),
          { ...earlier, attemptsMade: notification.attempts },
          counts,
        );
        for (const outcome of outcomes) attempts.push({ notificationId: notification.id, ...outcome });
        updates.push({ notificationId: notification.id, attempts: notification.attempts, decision });
      }),
    );
    await this.store.recordAttempt(attempts, updates);
  }

  /**
   * One notification's or group window's delivery: every pending endpoint at once, then the status
   * its results and the earlier attempts' call for. Counts each result into `counts`.
   */
  async #deliverTo(
    pending: readonly { endpoint: Endpoint; send: (channel: Channel) => Promise<DeliveryResult> }[],
    earlier: { deliveredEarlier: number; permanentEarlier: number; attemptsMade: number },
    counts: DispatchCounts,
  ): Promise<{ outcomes: EndpointOutcome[]; decision: StatusDecision }> {
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
    return { outcomes, decision: decideStatus({ results, ...earlier }, Math.random, this.policy) };
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
        return { outcome: "RETRYABLE", latencyMs: 0, error: error.message };
      }
      throw error;
    }
  }
}

const emptyCounts = (): DispatchCounts => ({ delivered: 0, retryable: 0, permanent: 0 });

function countOutcome(counts: DispatchCounts, result: DeliveryResult): void {
  if (result.outcome === "SUCCESS") counts.delivered++;
  else if (result.outcome === "RETRYABLE") counts.retryable++;
  else counts.permanent++;
}
