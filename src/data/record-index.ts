// The keys and byte offsets of a .rec's records, in index order, kept small enough for
// WebFace260M (260 M records) on every rank: about 2 bytes a record instead of 16.
//   keys     InsightFace packs number records 0, 1, 2...: then only the first key is kept;
//            other key lists are kept whole (8 bytes a record).
//   offsets  records follow each other in the .rec, so an offset is its predecessor's plus the
//            record's size: a Float64 base every BLOCK records and, for the others, the step from
//            the previous record in 4-byte units as a uint16 (records up to 256 KiB). A step that
//            does not fit (a larger record, an index out of file order) is kept exactly, aside.
// Lookups walk at most BLOCK - 1 steps from a base.

const BLOCK = 64;
const ESCAPE = 0xffff;

/** A growable typed array (JS arrays of 260 M numbers are slow and large). */
class Grow<A extends Float64Array | Uint16Array> {
  length = 0;
  constructor(
    private a: A,
    private readonly make: (n: number) => A,
  ) {}
  push(v: number): void {
    if (this.length === this.a.length) {
      const b = this.make(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.length++] = v;
  }
  /** The values (a view: copying would touch every page again). */
  done(): A {
    return this.a.subarray(0, this.length) as A;
  }
}

/** What a RecordIndexBuilder collected. */
interface IndexParts {
  length: number;
  /** First key when keys run k0, k0+1, ... (null: `keys` holds them). */
  contiguousFrom: number | null;
  keys: Float64Array | null;
  keysSorted: boolean;
  bases: Float64Array;
  steps: Uint16Array;
  exact: Map<number, number>;
  /** Position of the record at the largest offset (where the .rec must end), or -1. */
  lastPosition: number;
}

export class RecordIndex {
  readonly length: number;
  readonly contiguousFrom: number | null;
  readonly lastPosition: number;
  readonly #p: IndexParts;

  constructor(parts: IndexParts) {
    this.#p = parts;
    this.length = parts.length;
    this.contiguousFrom = parts.contiguousFrom;
    this.lastPosition = parts.lastPosition;
  }

  keyAt(i: number): number {
    return this.contiguousFrom !== null ? this.contiguousFrom + i : (this.#p.keys![i] as number);
  }

  offsetAt(i: number): number {
    const { bases, steps, exact } = this.#p;
    const b = Math.floor(i / BLOCK);
    let off = bases[b] as number;
    for (let j = b * BLOCK + 1; j <= i; j++) {
      const s = steps[j] as number;
      off = s === ESCAPE ? (exact.get(j) as number) : off + 4 * s;
    }
    return off;
  }

  /** Position of `key` in the index, or -1. */
  positionOf(key: number): number {
    if (this.contiguousFrom !== null) {
      const p = key - this.contiguousFrom;
      return Number.isInteger(p) && p >= 0 && p < this.length ? p : -1;
    }
    const keys = this.#p.keys!;
    if (this.#p.keysSorted) {
      let lo = 0;
      let hi = this.length - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1;
        const k = keys[mid] as number;
        if (k === key) return mid;
        if (k < key) lo = mid + 1;
        else hi = mid - 1;
      }
      return -1;
    }
    return this.byKey().get(key) ?? -1;
  }

  #byKey: Map<number, number> | undefined;
  /** Keys in no order: a map, built on first use (such indexes come from hand-made packs). */
  private byKey(): Map<number, number> {
    if (!this.#byKey) {
      this.#byKey = new Map();
      for (let i = 0; i < this.length; i++) this.#byKey.set(this.#p.keys![i] as number, i);
    }
    return this.#byKey;
  }

  /** Bytes this index holds. */
  get bytes(): number {
    const { keys, bases, steps, exact } = this.#p;
    return (keys?.byteLength ?? 0) + bases.byteLength + steps.byteLength + exact.size * 40;
  }
}

export class RecordIndexBuilder {
  private n = 0;
  private k0 = 0;
  private keys: Grow<Float64Array> | null = null;
  private sorted = true;
  private readonly bases: Grow<Float64Array>;
  private readonly steps: Grow<Uint16Array>;
  private readonly exact = new Map<number, number>();
  private prev = 0;
  private prevKey = 0;
  private maxOffset = -1;
  private last = -1;

  constructor(capacity: number) {
    const cap = Math.max(BLOCK, capacity);
    this.bases = new Grow(new Float64Array(Math.ceil(cap / BLOCK)), (n) => new Float64Array(n));
    this.steps = new Grow(new Uint16Array(cap), (n) => new Uint16Array(n));
  }

  get length(): number {
    return this.n;
  }

  /** Appends a record; `offset` must be a multiple of 4 (every record starts 4-aligned). */
  push(key: number, offset: number): void {
    const i = this.n++;
    if (i === 0) this.k0 = key;
    else if (this.keys === null && key !== this.k0 + i) {
      // The first key out of sequence: from here on, every key is kept.
      this.keys = new Grow(
        new Float64Array(Math.max(16, this.steps.done().length)),
        (n) => new Float64Array(n),
      );
      for (let j = 0; j < i; j++) this.keys.push(this.k0 + j);
    }
    if (this.keys !== null) {
      if (i > 0 && key <= this.prevKey) this.sorted = false;
      this.keys.push(key);
    }
    if (i % BLOCK === 0) {
      this.bases.push(offset);
      this.steps.push(0);
    } else {
      const step = (offset - this.prev) / 4;
      if (Number.isInteger(step) && step >= 0 && step < ESCAPE) this.steps.push(step);
      else {
        this.steps.push(ESCAPE);
        this.exact.set(i, offset);
      }
    }
    this.prev = offset;
    this.prevKey = key;
    if (offset > this.maxOffset) {
      this.maxOffset = offset;
      this.last = i;
    }
  }

  done(): RecordIndex {
    return new RecordIndex({
      length: this.n,
      contiguousFrom: this.keys === null ? this.k0 : null,
      keys: this.keys?.done() ?? null,
      keysSorted: this.sorted,
      bases: this.bases.done(),
      steps: this.steps.done(),
      exact: this.exact,
      lastPosition: this.last,
    });
  }
}
