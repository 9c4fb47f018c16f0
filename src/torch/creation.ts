// Making tensors: from JS data, filled, random, ranges.
import { native } from "./native.ts";
import { O } from "./ops.ts";
import { type AnyTypedArray, type DType, ELEMENT_SIZE, dtypeCode, dtypeOfArray } from "./dtype.ts";
import { Tensor, wrap } from "./tensor.ts";

export interface Options {
  dtype?: DType;
  device?: string;
  requiresGrad?: boolean;
}

function code(o: Options | undefined, fallback?: DType): number | null {
  const d = o?.dtype ?? fallback;
  return d === undefined ? null : dtypeCode(d);
}

function finish(t: Tensor, o: Options | undefined): Tensor {
  if (o?.requiresGrad) t.requiresGrad = true;
  return t;
}

function flatten(data: unknown, shape: number[], out: number[], depth: number): void {
  if (Array.isArray(data)) {
    if (shape.length <= depth) shape.push(data.length);
    else if (shape[depth] !== data.length) throw new Error("tensor(): ragged nested array");
    for (const x of data) flatten(x, shape, out, depth + 1);
  } else if (typeof data === "number" || typeof data === "boolean") {
    if (depth !== shape.length) throw new Error("tensor(): ragged nested array");
    out.push(Number(data));
  } else {
    throw new TypeError(`tensor(): unsupported element ${String(data)}`);
  }
}

export type NestedNumbers = number | boolean | NestedNumbers[];

/**
 * A tensor from a typed array (with a shape; defaults to 1-D) or from nested arrays of numbers
 * (f32 unless a dtype is given). Data is copied.
 */
export function tensor(
  data: AnyTypedArray | NestedNumbers,
  opts: Options & { shape?: readonly number[] } = {},
): Tensor {
  if (ArrayBuffer.isView(data)) {
    const dtype = opts.dtype ?? dtypeOfArray(data);
    const n = data.byteLength / ELEMENT_SIZE[dtype];
    const t = wrap(native.fromBuffer(data, dtypeCode(dtype), opts.shape ?? [n], opts.device));
    return finish(t, opts);
  }
  const shape: number[] = [];
  const flat: number[] = [];
  flatten(data, shape, flat, 0);
  const dtype = opts.dtype ?? "f32";
  const t = wrap(native.fromBuffer(toTyped(flat, dtype), dtypeCode(dtype), opts.shape ?? shape, opts.device));
  return finish(t, opts);
}

function toTyped(flat: number[], dtype: DType): AnyTypedArray {
  switch (dtype) {
    case "f32":
      return Float32Array.from(flat);
    case "f64":
      return Float64Array.from(flat);
    case "i64":
      return BigInt64Array.from(flat, (v) => BigInt(Math.trunc(v)));
    case "i32":
      return Int32Array.from(flat);
    case "i16":
      return Int16Array.from(flat);
    case "i8":
      return Int8Array.from(flat);
    case "u8":
    case "bool":
      return Uint8Array.from(flat, (v) => (dtype === "bool" ? (v ? 1 : 0) : v));
    case "f16":
    case "bf16": {
      // Go through f32 and let libtorch round.
      return Float32Array.from(flat);
    }
  }
}

/** A 0-dim tensor. */
export function scalarTensor(v: number, opts: Options = {}): Tensor {
  return full([], v, opts);
}

export function zeros(shape: readonly number[], opts: Options = {}): Tensor {
  return finish(wrap(native.call(O.zeros, shape, code(opts), null, opts.device ?? null)), opts);
}
export function ones(shape: readonly number[], opts: Options = {}): Tensor {
  return finish(wrap(native.call(O.ones, shape, code(opts), null, opts.device ?? null)), opts);
}
export function full(shape: readonly number[], value: number, opts: Options = {}): Tensor {
  return finish(wrap(native.call(O.full, shape, value, code(opts, "f32"), null, opts.device ?? null)), opts);
}
export function empty(shape: readonly number[], opts: Options = {}): Tensor {
  return finish(wrap(native.call(O.empty, shape, code(opts), null, opts.device ?? null)), opts);
}
export function arange(start: number, end?: number, step = 1, opts: Options = {}): Tensor {
  const [a, b] = end === undefined ? [0, start] : [start, end];
  return finish(wrap(native.call(O.arange, a, b, step, code(opts), null, opts.device ?? null)), opts);
}
export function linspace(start: number, end: number, steps: number, opts: Options = {}): Tensor {
  return finish(
    wrap(native.call(O.linspace, start, end, steps, code(opts), null, opts.device ?? null)),
    opts,
  );
}
export function rand(shape: readonly number[], opts: Options = {}): Tensor {
  return finish(wrap(native.call(O.rand, shape, code(opts), null, opts.device ?? null)), opts);
}
export function randn(shape: readonly number[], opts: Options = {}): Tensor {
  return finish(wrap(native.call(O.randn, shape, code(opts), null, opts.device ?? null)), opts);
}
/** Integers uniformly in [low, high). */
export function randint(low: number, high: number, shape: readonly number[], opts: Options = {}): Tensor {
  return wrap(native.call(O.randint, low, high, shape, code(opts, "i64"), null, opts.device ?? null));
}
export function randperm(n: number, opts: Options = {}): Tensor {
  return wrap(native.call(O.randperm, n, code(opts, "i64"), null, opts.device ?? null));
}
export function eye(n: number, opts: Options = {}): Tensor {
  return wrap(native.call(O.eye, n, code(opts), null, opts.device ?? null));
}
export function zerosLike(t: Tensor, opts: Options = {}): Tensor {
  return finish(wrap(native.call(O.zerosLike, t.native, code(opts))), opts);
}
export function onesLike(t: Tensor, opts: Options = {}): Tensor {
  return finish(wrap(native.call(O.onesLike, t.native, code(opts))), opts);
}
export function fullLike(t: Tensor, value: number, opts: Options = {}): Tensor {
  return finish(wrap(native.call(O.fullLike, t.native, value, code(opts))), opts);
}
export function randnLike(t: Tensor, opts: Options = {}): Tensor {
  return finish(wrap(native.call(O.randnLike, t.native, code(opts))), opts);
}
