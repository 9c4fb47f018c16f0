// The k largest impostor scores seen so far, as a multiset of float32 values. Values equal to
// the current k-th largest are not admitted once k are held: they could only replace an equal
// value, so the multiset of the k largest values (ties included) is the same either way.

export class TopScores {
  readonly k: number;
  #buf: Float32Array;
  #len = 0;
  /** A new score is kept only if it is greater than this. */
  #floor = -Infinity;

  constructor(k: number) {
    if (!Number.isInteger(k) || k < 0) throw new RangeError(`TopScores: k must be a count, got ${k}`);
    this.k = k;
    this.#buf = new Float32Array(Math.max(16, Math.min(2 * k, 1 << 16)));
    if (k === 0) this.#floor = Infinity;
  }

  /** Scores greater than this can change the result; others need not be offered. */
  get floor(): number {
    return this.#floor;
  }

  get size(): number {
    return Math.min(this.#len, this.k);
  }

  /** Whether k scores are held (then floor is the k-th largest so far, or higher). */
  get full(): boolean {
    return this.#floor > -Infinity;
  }

  push(scores: Float32Array): void {
    const floor = this.#floor;
    for (let i = 0; i < scores.length; i++) {
      const v = scores[i]!;
      if (!(v > floor)) continue;
      if (this.#len === this.#buf.length) this.#grow();
      this.#buf[this.#len++] = v;
    }
    // Raise the floor as soon as k are held, so that callers can filter by it from then on.
    if (this.#floor === -Infinity && this.#len >= this.k) this.#prune();
  }

  #grow(): void {
    if (this.#len >= 2 * this.k) {
      this.#prune();
      if (this.#len < this.#buf.length) return;
    }
    const next = new Float32Array(Math.min(Math.max(2 * this.#buf.length, 16), Math.max(2 * this.k, 16)));
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  /** Keeps exactly the k largest and raises the floor to the k-th largest. */
  #prune(): void {
    if (this.#len <= this.k) return;
    const cut = this.#len - this.k;
    selectNth(this.#buf, 0, this.#len, cut);
    this.#floor = this.#buf[cut]!;
    this.#buf.copyWithin(0, cut, this.#len);
    this.#len = this.k;
  }

  /** The held scores, largest first: s_1 >= s_2 >= ... (all of them when fewer than k came). */
  sortedDescending(): Float32Array {
    this.#prune();
    const out = this.#buf.slice(0, this.#len).sort().reverse();
    return out;
  }
}

/**
 * Rearranges a[from, to) so that a[n] holds the value sorted order puts there, with nothing
 * greater before it and nothing smaller after it (quickselect, median-of-three, linear time on
 * average; the buffer is pruned often, so a full sort each time would dominate).
 */
function selectNth(a: Float32Array, from: number, to: number, n: number): void {
  let lo = from;
  let hi = to - 1;
  while (hi > lo) {
    if (hi - lo < 16) {
      a.subarray(lo, hi + 1).sort();
      return;
    }
    const mid = (lo + hi) >>> 1;
    const x = a[lo]!;
    const y = a[mid]!;
    const z = a[hi]!;
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (n <= j) hi = j;
    else if (n >= i) lo = i;
    else return;
  }
}
