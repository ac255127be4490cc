/**
 * Which offsets may be committed. Work on a partition is tracked as segments of consecutive
 * consumed records; segments complete in any order (their outputs are acknowledged independently),
 * but a partition's commit point only advances over the longest completed prefix, so a crash never
 * skips an unfinished record. Each partition assignment has an epoch; segments of an old epoch are
 * dropped on revoke and can never be committed.
 */
import type { CommitOffset } from "../kafka/index.ts";

export interface Segment {
  readonly topic: string;
  readonly partition: number;
  readonly assignmentEpoch: number;
  readonly lastOffset: number;
  done: boolean;
}

interface PartitionWork {
  readonly topic: string;
  readonly partition: number;
  readonly assignmentEpoch: number;
  /** Segments in consumption order; completed ones at the head are folded into `committable`. */
  readonly segments: Segment[];
  /** Next offset to commit (last completed + 1), or -1 when nothing completed yet. */
  committable: number;
  committed: number;
}

function key(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

export class OffsetTracker {
  readonly #partitions = new Map<string, PartitionWork>();

  /** Registers consumed records [.., lastOffset] of one partition as in flight. */
  track(topic: string, partition: number, assignmentEpoch: number, lastOffset: number): Segment {
    const id = key(topic, partition);
    let work = this.#partitions.get(id);
    if (!work || work.assignmentEpoch !== assignmentEpoch) {
      work = { topic, partition, assignmentEpoch, segments: [], committable: -1, committed: -1 };
      this.#partitions.set(id, work);
    }
    const previous = work.segments.at(-1)?.lastOffset ?? work.committable - 1;
    if (lastOffset <= previous)
      throw new Error(`offsets must grow: ${topic}[${partition}] ${lastOffset} after ${previous}`);
    const segment: Segment = { topic, partition, assignmentEpoch, lastOffset, done: false };
    work.segments.push(segment);
    return segment;
  }

  /** Marks a segment's work durable (outputs acknowledged). */
  complete(segment: Segment): void {
    segment.done = true;
    const work = this.#partitions.get(key(segment.topic, segment.partition));
    if (!work || work.assignmentEpoch !== segment.assignmentEpoch) return; // revoked meanwhile
    while (work.segments[0]?.done) {
      const head = work.segments.shift() as Segment;
      work.committable = head.lastOffset + 1;
    }
  }

  /** Offsets that advanced since the last `markCommitted`, one per partition. */
  pendingCommits(): CommitOffset[] {
    const result: CommitOffset[] = [];
    for (const work of this.#partitions.values()) {
      if (work.committable > work.committed) {
        result.push({ ...this.#commitOffset(work) });
      }
    }
    return result;
  }

  markCommitted(offsets: readonly CommitOffset[]): void {
    for (const offset of offsets) {
      const work = this.#partitions.get(key(offset.topic, offset.partition));
      if (work && work.assignmentEpoch === offset.assignmentEpoch && offset.offset > work.committed) {
        work.committed = offset.offset;
      }
    }
  }

  /**
   * Forgets `partitions` (they are being revoked) and returns the offsets that were durable for
   * them, so the consumer can commit those while it still owns the partitions.
   */
  revoke(partitions: readonly { topic: string; partition: number }[]): CommitOffset[] {
    const durable: CommitOffset[] = [];
    for (const { topic, partition } of partitions) {
      const id = key(topic, partition);
      const work = this.#partitions.get(id);
      if (!work) continue;
      if (work.committable > work.committed) durable.push(this.#commitOffset(work));
      this.#partitions.delete(id);
    }
    return durable;
  }

  /** Number of segments not yet completed, over all partitions. */
  get inFlightCount(): number {
    let count = 0;
    for (const work of this.#partitions.values()) count += work.segments.length;
    return count;
  }

  #commitOffset(work: PartitionWork): CommitOffset {
    return {
      topic: work.topic,
      partition: work.partition,
      offset: work.committable,
      assignmentEpoch: work.assignmentEpoch,
    };
  }
}
