/**
 * Delivery invariants over what a test sent and what it saw: every expected id seen (no loss),
 * and how often each was seen (duplicates). Kept separate so the checks themselves are tested.
 */
export interface DeliveryCount {
  expected: number;
  delivered: number;
  lost: string[];
  duplicated: string[];
  unexpected: string[];
}

export function countDeliveries(expectedIds: Iterable<string>, seenIds: Iterable<string>): DeliveryCount {
  const expected = new Set(expectedIds);
  const seen = new Map<string, number>();
  for (const id of seenIds) seen.set(id, (seen.get(id) ?? 0) + 1);
  const lost = [...expected].filter((id) => !seen.has(id));
  const duplicated = [...seen].filter(([, n]) => n > 1).map(([id]) => id);
  const unexpected = [...seen.keys()].filter((id) => !expected.has(id));
  return { expected: expected.size, delivered: seen.size - unexpected.length, lost, duplicated, unexpected };
}

/** Offsets of one partition seen in order must have no gaps and never go backwards. */
export function offsetGaps(offsets: readonly number[]): { from: number; to: number }[] {
  const gaps: { from: number; to: number }[] = [];
  for (let i = 1; i < offsets.length; i++) {
    const previous = offsets[i - 1] as number;
    const current = offsets[i] as number;
    if (current !== previous + 1) gaps.push({ from: previous, to: current });
  }
  return gaps;
}
