// Deterministic memory: every tensor made inside scope(fn) is disposed when fn returns, except
// those it returns (which pass to the enclosing scope) and those marked keep(). GC finalizers in
// the addon remain a safety net only: a synchronous loop never lets them run.
//
// mfr's one idiom for tensor lifetimes (README, "Using the engine"): the framework opens the
// scopes (a training step, each optimizer update, checkpoint I/O), code inside them just computes;
// `using t = …` holds a single temporary outside a scope; scope(fn) a computation with several;
// nn's chain() drops each activation as the next exists; long-lived tensors are keep()-ed and
// freed by their owner; `p.grad` is borrowed (never disposed by the caller). Hand-written
// dispose() only where a scope would hold memory too long, said at the site, and in
// src/eval/handles.ts, the evaluation's hot loop (its documented exception).

/** What a scope can dispose. Tensor implements it; kept tensors are skipped. */
export interface Scoped {
  dispose(): void;
  readonly kept: boolean;
  /** Called when the tensor leaves every scope alive: the GC safety net takes it over. */
  escape(): void;
  /** Marks the tensor disposed and returns its handle for a batched native free (undefined if already). */
  releaseDeferred(): number | undefined;
}

/** Frees a batch of handles in one native call (set by tensor.ts, which owns the addon calls). */
let freeBatch: (handles: Float64Array, count: number) => void = () => {
  throw new Error("scope: no batch free installed");
};
export function setBatchFree(fn: (handles: Float64Array, count: number) => void): void {
  freeBatch = fn;
}
let batch = new Float64Array(256);

function disposeAll(ts: readonly Scoped[], keep?: Set<unknown>, parent?: Scoped[]): void {
  let n = 0;
  for (const t of ts) {
    if (keep?.has(t)) {
      if (parent !== undefined) parent.push(t);
      else t.escape();
      continue;
    }
    if (t.kept) {
      t.escape();
      continue;
    }
    const h = t.releaseDeferred();
    if (h === undefined) continue;
    if (n === batch.length) {
      const bigger = new Float64Array(batch.length * 2);
      bigger.set(batch);
      batch = bigger;
    }
    batch[n++] = h;
  }
  if (n > 0) freeBatch(batch, n);
}

let current: Scoped[] | undefined;

/** Called by every tensor when it is made; false when no scope owns it. */
export function track(t: Scoped): boolean {
  if (current === undefined) return false;
  current.push(t);
  return true;
}

function collect(value: unknown, into: Set<unknown>, depth: number): void {
  if (value === null || typeof value !== "object" || depth > 4) return;
  if (into.has(value)) return;
  into.add(value);
  if (Array.isArray(value)) {
    for (const v of value) collect(v, into, depth + 1);
  } else if (value instanceof Map) {
    for (const v of value.values()) collect(v, into, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, into, depth + 1);
  }
}

/**
 * Runs fn and disposes every tensor it made, except what it returns (found in arrays, Maps and
 * plain objects up to four levels deep). fn must be synchronous: tensors made across an await
 * could belong to other work.
 */
export function scope<T>(fn: () => T): T {
  const parent = current;
  const mine: Scoped[] = [];
  current = mine;
  let result: T;
  try {
    result = fn();
  } catch (err) {
    current = parent;
    disposeAll(mine);
    throw err;
  }
  current = parent;
  if (result instanceof Promise) {
    disposeAll(mine);
    throw new Error("scope(fn): fn returned a Promise; scopes are synchronous (wrap the synchronous parts)");
  }
  const keep = new Set<unknown>();
  collect(result, keep, 0);
  disposeAll(mine, keep, parent);
  return result;
}

/** Number of tensors tracked by the innermost scope (for tests and leak hunting). */
export function scopeSize(): number {
  return current?.length ?? 0;
}
