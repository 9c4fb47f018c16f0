// Tensor: the TypeScript face of a libtorch tensor. Methods are thin: each is one dispatcher
// call through an operator id (ops.ts); libtorch checks shapes and dtypes and its errors arrive
// as JS Errors naming the op.
import { native, type NativeArg, type NativeResult, type NativeTensor } from "./native.ts";
import { O } from "./ops.ts";
import { type AnyTypedArray, type DType, ELEMENT_SIZE, dtypeCode, dtypeName, viewBytes } from "./dtype.ts";
import { setBatchFree, track } from "./scope.ts";

export type Scalar = number | boolean;
export type Device = string;
/** A slice for Tensor.index: a number selects, [start, end, step?] slices, null keeps a dim. */
export type IndexSpec = number | null | readonly [number | null, number | null, number?] | Tensor;

/** Wraps one native result as a Tensor. */
export function wrap(r: NativeResult): Tensor {
  return new Tensor(r as NativeTensor);
}

/** Wraps a tuple or list result. */
export function wrapMany(r: NativeResult): Tensor[] {
  return (r as NativeTensor[]).map((x) => new Tensor(x));
}

/** Calls any ATen op by name ("aten::op.overload") with tensors and plain values. */
export function callOp(
  id: number,
  ...args: (Tensor | NativeArg | readonly (Tensor | null)[])[]
): NativeResult {
  return native.call(id, ...args.map(unbox));
}

function unbox(a: Tensor | NativeArg | readonly (Tensor | null)[]): NativeArg {
  if (a instanceof Tensor) return a.native;
  if (Array.isArray(a)) return a.map((x: unknown) => (x instanceof Tensor ? x.native : x)) as NativeArg;
  return a as NativeArg;
}

// The GC safety net: a tensor dropped without dispose() is freed when its JS object is collected.
// Registering costs about as much as a small op, so scope-owned tensors (freed deterministically)
// join only if they escape, and tensors made outside scopes join in batches: most of those are
// disposed before the batch is flushed and never cost a registration.
const finalizer = new FinalizationRegistry<NativeTensor>((h) => native.dispose(h));
setBatchFree((handles, count) => native.disposeMany(handles, count));
const pending: Tensor[] = [];
let flushQueued = false;

// `.grad` hands out one borrowed handle per tensor, freed by the tensor: a backward pass may have
// written any gradient slot, so each one bumps this and the next access reads the slot again.
let backwardPasses = 0;

function flushPending(): void {
  flushQueued = false;
  for (const t of pending) t.escapeNow();
  pending.length = 0;
}

function watchLater(t: Tensor): void {
  pending.push(t);
  if (pending.length >= 4096) flushPending();
  else if (!flushQueued) {
    flushQueued = true;
    setImmediate(flushPending);
  }
}

/** @internal Called by every entry into autograd's backward (src/torch/autograd.ts). */
export function noteBackward(): void {
  backwardPasses++;
}

export class Tensor {
  /** The addon's handle. */
  readonly native: NativeTensor;
  #kept = false;
  #watched = false;
  #released = false;
  #shape: number[] | undefined;
  #grad: Tensor | undefined;
  #gradPass = -1;

  constructor(handle: NativeTensor) {
    this.native = handle;
    if (!track(this)) watchLater(this);
  }

  /** Hands the tensor to the GC safety net once it lives outside every scope. */
  escape(): void {
    if (!this.#watched && !this.#released) watchLater(this);
  }
  /** @internal Registers with the GC safety net now (batched by watchLater). */
  escapeNow(): void {
    if (this.#watched || this.#released) return;
    this.#watched = true;
    finalizer.register(this, this.native, this);
  }

  /** @internal For scopes: marks this disposed and hands back the handle to free in a batch. */
  releaseDeferred(): number | undefined {
    if (this.#released) return undefined;
    this.#released = true;
    this.#dropGrad();
    if (this.#watched) finalizer.unregister(this);
    return this.native;
  }

  private release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#dropGrad();
    native.dispose(this.native);
    if (this.#watched) finalizer.unregister(this);
  }

  // ---- lifetime -----------------------------------------------------------------------------
  /** Frees the tensor's memory now (its storage, once no view or graph holds it). */
  dispose(): void {
    this.release();
  }
  [Symbol.dispose](): void {
    this.release();
  }
  get disposed(): boolean {
    return !native.isLive(this.native);
  }
  /** Exempts this tensor from every scope's cleanup (parameters, optimizer state). */
  keep(): this {
    this.#kept = true;
    return this;
  }
  get kept(): boolean {
    return this.#kept;
  }

  // ---- metadata -----------------------------------------------------------------------------
  get shape(): readonly number[] {
    return (this.#shape ??= native.shape(this.native));
  }
  get dtype(): DType {
    return dtypeName(native.dtype(this.native));
  }
  get device(): Device {
    return native.device(this.native);
  }
  get ndim(): number {
    return native.dim(this.native);
  }
  get numel(): number {
    return native.numel(this.native);
  }
  size(dim: number): number {
    const s = this.shape;
    const d = dim < 0 ? dim + s.length : dim;
    const n = s[d];
    if (n === undefined) throw new RangeError(`size(${dim}): tensor has ${s.length} dims`);
    return n;
  }
  get strides(): number[] {
    return native.strides(this.native);
  }
  isContiguous(): boolean {
    return native.isContiguous(this.native);
  }

  // ---- data ---------------------------------------------------------------------------------
  /** The single element as a number (or boolean). */
  item(): number {
    return Number(native.item(this.native));
  }
  /** A copy of the elements in row-major order, in the typed array of the dtype. */
  data(): AnyTypedArray {
    return viewBytes(native.toBuffer(this.native), this.dtype);
  }
  /** Elements as plain numbers (int64 converted with Number()). */
  toArray(): number[] {
    const d = this.data();
    return Array.from(d as ArrayLike<number | bigint>, (v) => Number(v));
  }
  /** The raw bytes of the elements (row-major, little-endian), as a new ArrayBuffer. */
  bytes(): ArrayBuffer {
    return native.toBuffer(this.native);
  }
  /**
   * The bytes of a contiguous CPU tensor as views of its own memory, at most `chunk` bytes each
   * (files and hashes take them in pieces: Node's reads, writes and buffers stop at 2-4 GiB).
   * A view keeps the memory alive, even past dispose(); writing into one writes the tensor.
   */
  *byteViews(chunk = 1 << 26): Generator<Uint8Array> {
    const total = native.numel(this.native) * ELEMENT_SIZE[this.dtype];
    for (let off = 0; off < total; off += chunk) {
      const len = Math.min(chunk, total - off);
      yield new Uint8Array(native.bytesView(this.native, off, len));
    }
  }
  /** Copies the elements into a caller-owned buffer of exactly the tensor's byte size. */
  copyInto(dst: ArrayBufferView | ArrayBuffer): void {
    native.copyInto(this.native, dst);
  }

  // ---- autograd -----------------------------------------------------------------------------
  get requiresGrad(): boolean {
    return native.requiresGrad(this.native);
  }
  set requiresGrad(on: boolean) {
    native.setRequiresGrad(this.native, on);
  }
  requiresGrad_(on = true): this {
    native.setRequiresGrad(this.native, on);
    return this;
  }
  /**
   * The accumulated gradient, or undefined: a borrowed handle, owned by this tensor (never
   * dispose it), valid until the next backward pass or assignment to this `.grad`.
   */
  get grad(): Tensor | undefined {
    if (this.#grad !== undefined && this.#gradPass === backwardPasses && !this.#grad.#released)
      return this.#grad;
    this.#dropGrad();
    const g = native.gradOf(this.native);
    if (g === undefined) return undefined;
    this.#gradPass = backwardPasses;
    return (this.#grad = new Tensor(g).keep());
  }
  /** Sets the gradient slot (the slot holds its own reference: `g` may be disposed after). */
  set grad(g: Tensor | undefined) {
    this.#dropGrad();
    native.setGrad(this.native, g?.native);
  }
  #dropGrad(): void {
    this.#grad?.release();
    this.#grad = undefined;
  }
  get isLeaf(): boolean {
    return native.isLeaf(this.native);
  }
  get gradFn(): string | undefined {
    return native.gradFn(this.native);
  }
  retainGrad(): this {
    native.retainGrad(this.native);
    return this;
  }
  backward(grad?: Tensor, opts: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
    backwardPasses++;
    native.backward([this.native], grad ? [grad.native] : undefined, opts.retainGraph, !!opts.createGraph);
  }
  /** backward() on a pool thread: timers, signals and I/O keep running meanwhile. */
  async backwardAsync(grad?: Tensor, opts: { retainGraph?: boolean } = {}): Promise<void> {
    backwardPasses++;
    await native.backwardAsync([this.native], grad ? [grad.native] : undefined, opts.retainGraph, false);
    backwardPasses++;
  }
  detach(): Tensor {
    return wrap(native.call(O.detach, this.native));
  }

  // ---- conversion ---------------------------------------------------------------------------
  to(target: DType | Device, opts: { copy?: boolean } = {}): Tensor {
    if (isDType(target))
      return wrap(native.call(O.toDtype, this.native, dtypeCode(target), false, !!opts.copy));
    return wrap(native.call(O.toDevice, this.native, target, native.dtype(this.native), false, !!opts.copy));
  }
  float(): Tensor {
    return this.to("f32");
  }
  clone(): Tensor {
    return wrap(native.call(O.clone, this.native));
  }
  contiguous(): Tensor {
    return wrap(native.call(O.contiguous, this.native));
  }

  // ---- elementwise --------------------------------------------------------------------------
  add(o: Tensor | number, alpha?: number): Tensor {
    return wrap(
      typeof o === "number"
        ? native.call(O.addS, this.native, o, alpha)
        : native.call(O.add, this.native, o.native, alpha),
    );
  }
  sub(o: Tensor | number, alpha?: number): Tensor {
    return wrap(
      typeof o === "number"
        ? native.call(O.subS, this.native, o, alpha)
        : native.call(O.sub, this.native, o.native, alpha),
    );
  }
  mul(o: Tensor | number): Tensor {
    return wrap(
      typeof o === "number" ? native.call(O.mulS, this.native, o) : native.call(O.mul, this.native, o.native),
    );
  }
  div(o: Tensor | number): Tensor {
    return wrap(
      typeof o === "number" ? native.call(O.divS, this.native, o) : native.call(O.div, this.native, o.native),
    );
  }
  pow(e: Tensor | number): Tensor {
    return wrap(
      typeof e === "number" ? native.call(O.powS, this.native, e) : native.call(O.pow, this.native, e.native),
    );
  }
  neg(): Tensor {
    return this.unary(O.neg);
  }
  exp(): Tensor {
    return this.unary(O.exp);
  }
  log(): Tensor {
    return this.unary(O.log);
  }
  sqrt(): Tensor {
    return this.unary(O.sqrt);
  }
  rsqrt(): Tensor {
    return this.unary(O.rsqrt);
  }
  abs(): Tensor {
    return this.unary(O.abs);
  }
  sign(): Tensor {
    return this.unary(O.sign);
  }
  sigmoid(): Tensor {
    return this.unary(O.sigmoid);
  }
  tanh(): Tensor {
    return this.unary(O.tanh);
  }
  relu(): Tensor {
    return this.unary(O.relu);
  }
  square(): Tensor {
    return this.unary(O.square);
  }
  reciprocal(): Tensor {
    return this.unary(O.reciprocal);
  }
  sin(): Tensor {
    return this.unary(O.sin);
  }
  cos(): Tensor {
    return this.unary(O.cos);
  }
  acos(): Tensor {
    return this.unary(O.acos);
  }
  floor(): Tensor {
    return this.unary(O.floor);
  }
  round(): Tensor {
    return this.unary(O.round);
  }
  isfinite(): Tensor {
    return this.unary(O.isfinite);
  }
  logicalNot(): Tensor {
    return this.unary(O.logicalNot);
  }
  clamp(min?: number, max?: number): Tensor {
    return wrap(native.call(O.clamp, this.native, min ?? null, max ?? null));
  }
  maximum(o: Tensor): Tensor {
    return this.binary(O.maximum, o);
  }
  minimum(o: Tensor): Tensor {
    return this.binary(O.minimum, o);
  }
  logicalAnd(o: Tensor): Tensor {
    return this.binary(O.logicalAnd, o);
  }
  matmul(o: Tensor): Tensor {
    return this.binary(O.matmul, o);
  }
  mm(o: Tensor): Tensor {
    return this.binary(O.mm, o);
  }
  bmm(o: Tensor): Tensor {
    return this.binary(O.bmm, o);
  }
  eq(o: Tensor | Scalar): Tensor {
    return this.compare(O.eq, O.eqS, o);
  }
  ne(o: Tensor | Scalar): Tensor {
    return this.compare(O.ne, O.neS, o);
  }
  gt(o: Tensor | Scalar): Tensor {
    return this.compare(O.gt, O.gtS, o);
  }
  ge(o: Tensor | Scalar): Tensor {
    return this.compare(O.ge, O.geS, o);
  }
  lt(o: Tensor | Scalar): Tensor {
    return this.compare(O.lt, O.ltS, o);
  }
  le(o: Tensor | Scalar): Tensor {
    return this.compare(O.le, O.leS, o);
  }
  maskedFill(mask: Tensor, value: Scalar): Tensor {
    return wrap(native.call(O.maskedFill, this.native, mask.native, value));
  }
  softmax(dim: number): Tensor {
    return wrap(native.call(O.softmax, this.native, dim));
  }
  logSoftmax(dim: number): Tensor {
    return wrap(native.call(O.logSoftmax, this.native, dim));
  }

  // ---- in place (return this) ---------------------------------------------------------------
  add_(o: Tensor | number, alpha?: number): this {
    if (typeof o === "number") native.callVoid(O.addS_, this.native, o, alpha);
    else native.callVoid(O.add_, this.native, o.native, alpha);
    return this;
  }
  sub_(o: Tensor | number, alpha?: number): this {
    if (typeof o === "number") native.callVoid(O.subS_, this.native, o, alpha);
    else native.callVoid(O.sub_, this.native, o.native, alpha);
    return this;
  }
  mul_(o: Tensor | number): this {
    if (typeof o === "number") native.callVoid(O.mulS_, this.native, o);
    else native.callVoid(O.mul_, this.native, o.native);
    return this;
  }
  div_(o: Tensor | number): this {
    if (typeof o === "number") native.callVoid(O.divS_, this.native, o);
    else native.callVoid(O.div_, this.native, o.native);
    return this;
  }
  clamp_(min?: number, max?: number): this {
    native.callVoid(O.clamp_, this.native, min ?? null, max ?? null);
    return this;
  }
  zero_(): this {
    native.callVoid(O.zero_, this.native);
    return this;
  }
  fill_(v: Scalar): this {
    native.callVoid(O.fill_, this.native, v);
    return this;
  }
  copy_(src: Tensor): this {
    native.callVoid(O.copy_, this.native, src.native);
    return this;
  }
  sqrt_(): this {
    native.callVoid(O.sqrt_, this.native);
    return this;
  }
  addcmul_(a: Tensor, b: Tensor, value = 1): this {
    native.callVoid(O.addcmul_, this.native, a.native, b.native, value);
    return this;
  }
  addcdiv_(a: Tensor, b: Tensor, value = 1): this {
    native.callVoid(O.addcdiv_, this.native, a.native, b.native, value);
    return this;
  }
  lerp_(end: Tensor, weight: number): this {
    native.callVoid(O.lerp_, this.native, end.native, weight);
    return this;
  }
  maskedFill_(mask: Tensor, value: Scalar): this {
    native.callVoid(O.maskedFill_, this.native, mask.native, value);
    return this;
  }
  normal_(mean = 0, std = 1): this {
    native.callVoid(O.normal_, this.native, mean, std);
    return this;
  }
  uniform_(from = 0, to = 1): this {
    native.callVoid(O.uniform_, this.native, from, to);
    return this;
  }
  indexAdd_(dim: number, index: Tensor, source: Tensor, alpha?: number): this {
    native.callVoid(O.indexAdd_, this.native, dim, index.native, source.native, alpha);
    return this;
  }
  indexPut_(indices: readonly (Tensor | null)[], values: Tensor, accumulate = false): this {
    native.callVoid(
      O.indexPut_,
      this.native,
      indices.map((t) => t?.native ?? null),
      values.native,
      accumulate,
    );
    return this;
  }

  // ---- reductions ---------------------------------------------------------------------------
  sum(dim?: number | readonly number[], keepdim = false): Tensor {
    return wrap(
      dim === undefined
        ? native.call(O.sumAll, this.native)
        : native.call(O.sum, this.native, dims(dim), keepdim),
    );
  }
  mean(dim?: number | readonly number[], keepdim = false): Tensor {
    return wrap(
      dim === undefined
        ? native.call(O.meanAll, this.native)
        : native.call(O.mean, this.native, dims(dim), keepdim),
    );
  }
  max(): Tensor {
    return this.unary(O.maxAll);
  }
  min(): Tensor {
    return this.unary(O.minAll);
  }
  /** [values, indices] along dim. */
  maxDim(dim: number, keepdim = false): [Tensor, Tensor] {
    return wrapMany(native.call(O.maxDim, this.native, dim, keepdim)) as [Tensor, Tensor];
  }
  minDim(dim: number, keepdim = false): [Tensor, Tensor] {
    return wrapMany(native.call(O.minDim, this.native, dim, keepdim)) as [Tensor, Tensor];
  }
  amax(dim: number | readonly number[], keepdim = false): Tensor {
    return wrap(native.call(O.amax, this.native, dims(dim), keepdim));
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return wrap(native.call(O.argmax, this.native, dim ?? null, keepdim));
  }
  /** Vector p-norm over dims (all elements when omitted). */
  norm(p = 2, dim?: number | readonly number[], keepdim = false): Tensor {
    return wrap(native.call(O.norm, this.native, p, dim === undefined ? null : dims(dim), keepdim));
  }
  var(dim?: number | readonly number[], opts: { correction?: number; keepdim?: boolean } = {}): Tensor {
    return wrap(
      native.call(
        O.var,
        this.native,
        dim === undefined ? null : dims(dim),
        opts.correction ?? 1,
        !!opts.keepdim,
      ),
    );
  }
  logsumexp(dim: number | readonly number[], keepdim = false): Tensor {
    return wrap(native.call(O.logsumexp, this.native, dims(dim), keepdim));
  }
  all(): Tensor {
    return this.unary(O.all);
  }
  any(): Tensor {
    return this.unary(O.any);
  }
  cumsum(dim: number): Tensor {
    return wrap(native.call(O.cumsum, this.native, dim));
  }
  topk(k: number, dim = -1, largest = true, sorted = true): [Tensor, Tensor] {
    return wrapMany(native.call(O.topk, this.native, k, dim, largest, sorted)) as [Tensor, Tensor];
  }
  sort(dim = -1, descending = false): [Tensor, Tensor] {
    return wrapMany(native.call(O.sort, this.native, dim, descending)) as [Tensor, Tensor];
  }
  argsort(dim = -1, descending = false): Tensor {
    return wrap(native.call(O.argsort, this.native, dim, descending));
  }

  // ---- shape and indexing -------------------------------------------------------------------
  reshape(...shape: number[]): Tensor {
    return wrap(native.call(O.reshape, this.native, shape));
  }
  view(...shape: number[]): Tensor {
    return wrap(native.call(O.view, this.native, shape));
  }
  flatten(start = 0, end = -1): Tensor {
    return wrap(native.call(O.flatten, this.native, start, end));
  }
  unsqueeze(dim: number): Tensor {
    return wrap(native.call(O.unsqueeze, this.native, dim));
  }
  squeeze(dim?: number): Tensor {
    return wrap(
      dim === undefined ? native.call(O.squeeze, this.native) : native.call(O.squeezeDim, this.native, dim),
    );
  }
  transpose(a: number, b: number): Tensor {
    return wrap(native.call(O.transpose, this.native, a, b));
  }
  permute(...order: number[]): Tensor {
    return wrap(native.call(O.permute, this.native, order));
  }
  get T(): Tensor {
    return this.unary(O.t);
  }
  expand(...shape: number[]): Tensor {
    return wrap(native.call(O.expand, this.native, shape));
  }
  repeat(...times: number[]): Tensor {
    return wrap(native.call(O.repeat, this.native, times));
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return wrap(native.call(O.narrow, this.native, dim, start, length));
  }
  slice(dim: number, start: number | null, end: number | null, step = 1): Tensor {
    return wrap(native.call(O.slice, this.native, dim, start, end, step));
  }
  select(dim: number, i: number): Tensor {
    return wrap(native.call(O.select, this.native, dim, i));
  }
  chunk(n: number, dim = 0): Tensor[] {
    return wrapMany(native.call(O.chunk, this.native, n, dim));
  }
  split(size: number | readonly number[], dim = 0): Tensor[] {
    return wrapMany(
      typeof size === "number"
        ? native.call(O.split, this.native, size, dim)
        : native.call(O.splitSizes, this.native, size, dim),
    );
  }
  flip(...dimsToFlip: number[]): Tensor {
    return wrap(native.call(O.flip, this.native, dimsToFlip));
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return wrap(native.call(O.indexSelect, this.native, dim, index.native));
  }
  gather(dim: number, index: Tensor): Tensor {
    return wrap(native.call(O.gather, this.native, dim, index.native));
  }
  scatter(dim: number, index: Tensor, src: Tensor | Scalar): Tensor {
    return wrap(
      src instanceof Tensor
        ? native.call(O.scatter, this.native, dim, index.native, src.native)
        : native.call(O.scatterS, this.native, dim, index.native, src),
    );
  }
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor {
    return wrap(native.call(O.scatterAdd, this.native, dim, index.native, src.native));
  }
  indexAdd(dim: number, index: Tensor, source: Tensor, alpha?: number): Tensor {
    return wrap(native.call(O.indexAdd, this.native, dim, index.native, source.native, alpha));
  }
  maskedSelect(mask: Tensor): Tensor {
    return wrap(native.call(O.maskedSelect, this.native, mask.native));
  }
  nonzero(): Tensor {
    return this.unary(O.nonzero);
  }
  /**
   * NumPy-style indexing, one spec per leading dim: a number selects (dropping the dim),
   * [start, end, step?] slices, null keeps the dim whole, a Tensor gathers (advanced indexing).
   */
  index(...specs: IndexSpec[]): Tensor {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- cur walks from this tensor through views
    let cur: Tensor = this;
    let dim = 0;
    const advanced: (Tensor | null)[] = [];
    const made: Tensor[] = [];
    for (const s of specs) {
      if (s instanceof Tensor) {
        advanced[dim] = s;
        dim++;
        continue;
      }
      if (s === null) {
        dim++;
        continue;
      }
      const next: Tensor = typeof s === "number" ? cur.select(dim, s) : cur.slice(dim, s[0], s[1], s[2] ?? 1);
      if (cur !== this) made.push(cur);
      cur = next;
      if (typeof s !== "number") dim++;
    }
    if (advanced.length === 0) return cur === this ? this.alias() : cur;
    const out = wrap(
      native.call(
        O.index,
        cur.native,
        Array.from(advanced, (t) => t?.native ?? null),
      ),
    );
    if (cur !== this) made.push(cur);
    for (const t of made) t.dispose();
    return out;
  }
  /** A second handle on the same tensor (same storage, same autograd identity). */
  alias(): Tensor {
    return wrap(native.call(O.alias, this.native));
  }

  toString(): string {
    return this.disposed
      ? "Tensor(disposed)"
      : `Tensor(shape=[${this.shape.join(", ")}], dtype=${this.dtype}, device=${this.device})`;
  }

  // ---- helpers ------------------------------------------------------------------------------
  private unary(id: number): Tensor {
    return wrap(native.call(id, this.native));
  }
  private binary(id: number, o: Tensor): Tensor {
    return wrap(native.call(id, this.native, o.native));
  }
  private compare(id: number, idS: number, o: Tensor | Scalar): Tensor {
    return wrap(
      o instanceof Tensor ? native.call(id, this.native, o.native) : native.call(idS, this.native, o),
    );
  }
}

function dims(d: number | readonly number[]): readonly number[] {
  return typeof d === "number" ? [d] : d;
}

const DTYPES = new Set<string>(["f32", "f64", "f16", "bf16", "i64", "i32", "i16", "i8", "u8", "bool"]);
export function isDType(x: string): x is DType {
  return DTYPES.has(x);
}
