// The k largest impostor scores seen so far, as a multiset of float32 values. Values equal to
// the current k-th largest are not admitted once k are held: they could only replace an equal
// value, so the multiset of the k largest values (ties included) is the same either way.
// A lower bound given up front (a guess of the k-th largest over all blocks) filters from the
// first value on; the buffer then holds the k largest of the values above it, which are the k
// largest of all only if at least k values came (the caller checks, and falls back if not).

export class TopScores {
  readonly k: number;
  /** Only values greater than this were admitted. */
  readonly above: number;
  /**
   * 2k values (made at the first admitted value): pruned to k when full, and the free half is
   * the radix sort's scratch. Pages nobody writes are never faulted in, so the unused part of a
   * large buffer costs nothing (growing by copies would fault in twice the memory).
   */
  #buf = new Float32Array(0);
  #len = 0;
  /** A new score is kept only if it is greater than this. */
  #floor: number;
  /** Whether k values have been held (the floor is then at least the k-th largest so far). */
  #reached = false;

  constructor(k: number, above = -Infinity) {
    if (!Number.isInteger(k) || k < 0) throw new RangeError(`TopScores: k must be a count, got ${k}`);
    this.k = k;
    this.above = above;
    this.#floor = k === 0 ? Infinity : above;
  }

  /** Scores greater than this can change the result; others need not be offered. */
  get floor(): number {
    return this.#floor;
  }

  get size(): number {
    return Math.min(this.#len, this.k);
  }

  /** Whether the floor is finite: callers need offer only the values above it. */
  get bounded(): boolean {
    return this.#floor > -Infinity;
  }

  push(scores: Float32Array): void {
    let floor = this.#floor;
    for (let i = 0; i < scores.length; i++) {
      const v = scores[i]!;
      if (!(v > floor)) continue;
      if (this.#len === this.#buf.length) {
        if (this.#len === 0) this.#buf = new Float32Array(Math.max(16, 2 * this.k));
        else {
          this.#prune();
          floor = this.#floor;
          if (!(v > floor)) continue;
        }
      }
      this.#buf[this.#len++] = v;
    }
    // Raise the floor as soon as k are held, so that callers can filter by it from then on.
    if (!this.#reached && this.#len >= this.k) this.#prune();
  }

  /** With at least k held: keeps exactly the k largest and raises the floor to the k-th largest. */
  #prune(): void {
    if (this.#len < this.k || this.k === 0) return;
    const cut = this.#len - this.k;
    selectNth(this.#buf, 0, this.#len, cut);
    this.#floor = this.#buf[cut]!;
    this.#reached = true;
    this.#buf.copyWithin(0, cut, this.#len);
    this.#len = this.k;
  }

  /**
   * The held scores, largest first: s_1 >= s_2 >= ... (all of them when fewer than k came). A
   * view of the buffer, sorted in place: valid until the next push.
   */
  sortedDescending(): Float32Array {
    this.#prune();
    const n = this.#len;
    sortDescending(this.#buf.subarray(0, n), this.#buf.subarray(n, 2 * n));
    return this.#buf.subarray(0, n);
  }
}

/**
 * The k largest of arrays each sorted descending, merged, largest first (a k-way merge: the
 * parts are few, one per rank).
 */
export function mergeDescending(parts: readonly Float32Array[], k: number): Float32Array {
  if (parts.length === 1 && parts[0]!.length <= k) return parts[0]!;
  const out = new Float32Array(
    Math.min(
      k,
      parts.reduce((s, p) => s + p.length, 0),
    ),
  );
  const at = new Array<number>(parts.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    let best = -1;
    for (let r = 0; r < parts.length; r++)
      if (at[r]! < parts[r]!.length && (best < 0 || parts[r]![at[r]!]! > parts[best]![at[best]!]!)) best = r;
    out[o] = parts[best]![at[best]!++]!;
  }
  return out;
}

/**
 * Sorts values descending, in place. Past a few thousand values, an LSD radix sort (two passes of
 * 16 bits) on order-preserving keys, ~10x faster than TypedArray sort on the ~10^6 scores of a
 * tail, with scratch (as long as values; made when not given) for the passes.
 */
export function sortDescending(values: Float32Array, scratch?: Float32Array): Float32Array {
  const n = values.length;
  if (n < 4096) return values.sort().reverse();
  // Ascending key: sign bit set for positives, all bits flipped for negatives; inverted to descend.
  let keys = new Uint32Array(values.buffer, values.byteOffset, n);
  for (let i = 0; i < n; i++) {
    const b = keys[i]!;
    keys[i] = b & 0x80000000 ? b : ~(b | 0x80000000);
  }
  const spare = scratch && scratch.length >= n ? scratch : new Float32Array(n);
  let next = new Uint32Array(spare.buffer, spare.byteOffset, n);
  const count = new Uint32Array(1 << 16);
  for (const shift of [0, 16]) {
    count.fill(0);
    for (let i = 0; i < n; i++) count[(keys[i]! >>> shift) & 0xffff]!++;
    let sum = 0;
    for (let b = 0; b < count.length; b++) {
      const c = count[b]!;
      count[b] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const key = keys[i]!;
      next[count[(key >>> shift) & 0xffff]!++] = key;
    }
    [keys, next] = [next, keys];
  }
  // An even number of passes: the keys are back in values' memory.
  for (let i = 0; i < n; i++) {
    const key = keys[i]!;
    keys[i] = key & 0x80000000 ? key : ~key & 0x7fffffff;
  }
  return values;
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
