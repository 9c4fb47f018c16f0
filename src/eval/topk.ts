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

  push(scores: Float32Array): void {
    const floor = this.#floor;
    for (let i = 0; i < scores.length; i++) {
      const v = scores[i]!;
      if (!(v > floor)) continue;
      if (this.#len === this.#buf.length) this.#grow();
      this.#buf[this.#len++] = v;
    }
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
    this.#buf.subarray(0, this.#len).sort();
    this.#floor = this.#buf[this.#len - this.k]!;
    this.#buf.copyWithin(0, this.#len - this.k, this.#len);
    this.#len = this.k;
  }

  /** The held scores, largest first: s_1 >= s_2 >= ... (all of them when fewer than k came). */
  sortedDescending(): Float32Array {
    this.#prune();
    const out = this.#buf.slice(0, this.#len).sort().reverse();
    return out;
  }
}
