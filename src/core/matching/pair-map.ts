/**
 * Pairs of non-negative int32s -> values: open addressing with linear probing on one JS array of
 * [a, b, value] slots, so a lookup reads one or two adjacent cache lines and allocates nothing. A
 * Map<number, V> with the pair folded into one number measured 4-6x slower per lookup at 100k entries
 * (several dependent loads per probe) and allocates on every insertion; keeping the value in its slot,
 * rather than in a second array, saves the matcher's cached path a cache miss (~25% of its time).
 */
export class PairMap<V> {
  /** [a, b, value] per slot; a === EMPTY marks a free slot. */
  private slots: unknown[];
  /** slot count - 1 (a power of two minus one). */
  private mask: number;
  /** 32 - log2(slot count): the home slot is the top bits of a multiplicative hash. */
  private shift: number;
  private count = 0;

  constructor() {
    this.slots = new Array(MIN_SLOTS * SLOT).fill(EMPTY);
    this.mask = MIN_SLOTS - 1;
    this.shift = 32 - Math.log2(MIN_SLOTS);
  }

  get size(): number {
    return this.count;
  }

  get(a: number, b: number): V | undefined {
    const at = this.find(a, b);
    return at < 0 ? undefined : (this.slots[at + 2] as V);
  }

  /** Adds (a, b), or replaces its value. */
  set(a: number, b: number, value: V): void {
    let at = this.find(a, b);
    if (at < 0) {
      // Load stays <= 1/2, so probe runs stay short and a miss soon meets a free slot.
      if ((this.count + 1) * 2 > this.mask + 1) this.grow();
      this.count++;
      at = this.free(a, b);
      this.slots[at] = a;
      this.slots[at + 1] = b;
    }
    this.slots[at + 2] = value;
  }

  /** Forgets every entry (and drops the values), keeping the slots allocated for refilling. */
  clear(): void {
    if (this.count === 0) return;
    this.slots.fill(EMPTY);
    this.count = 0;
  }

  private home(a: number, b: number): number {
    return Math.imul(Math.imul(a, 0x9e3779b1) ^ b, 0x85ebca77) >>> this.shift;
  }

  /** The offset of (a, b)'s slot, or -1. */
  private find(a: number, b: number): number {
    const slots = this.slots;
    for (let slot = this.home(a, b); ; slot = (slot + 1) & this.mask) {
      const at = slot * SLOT;
      const key = slots[at];
      if (key === a && slots[at + 1] === b) return at;
      if (key === EMPTY) return -1;
    }
  }

  /** The offset of the free slot where (a, b), known absent, goes. */
  private free(a: number, b: number): number {
    let slot = this.home(a, b);
    while (this.slots[slot * SLOT] !== EMPTY) slot = (slot + 1) & this.mask;
    return slot * SLOT;
  }

  private grow(): void {
    const old = this.slots;
    const slotCount = (this.mask + 1) * 2;
    this.slots = new Array(slotCount * SLOT).fill(EMPTY);
    this.mask = slotCount - 1;
    this.shift--;
    for (let from = 0; from < old.length; from += SLOT) {
      if (old[from] === EMPTY) continue;
      const at = this.free(old[from] as number, old[from + 1] as number);
      this.slots[at] = old[from];
      this.slots[at + 1] = old[from + 1];
      this.slots[at + 2] = old[from + 2];
    }
  }
}

const SLOT = 3;
const EMPTY = -1;
const MIN_SLOTS = 16;
