// Functions over several tensors and the neural-network primitives (torch.nn.functional's share).
import { native } from "./native.ts";
import { O } from "./ops.ts";
import { Tensor, wrap, type Scalar } from "./tensor.ts";

export function cat(ts: readonly Tensor[], dim = 0): Tensor {
  return wrap(
    native.call(
      O.cat,
      ts.map((t) => t.native),
      dim,
    ),
  );
}
export function stack(ts: readonly Tensor[], dim = 0): Tensor {
  return wrap(
    native.call(
      O.stack,
      ts.map((t) => t.native),
      dim,
    ),
  );
}
/** Elementwise cond ? a : b. */
export function where(cond: Tensor, a: Tensor, b: Tensor | Scalar): Tensor {
  return wrap(
    b instanceof Tensor
      ? native.call(O.where, cond.native, a.native, b.native)
      : native.call(O.whereS, cond.native, a.native, b),
  );
}

export interface Conv2dOptions {
  stride?: number | readonly [number, number];
  padding?: number | readonly [number, number];
  dilation?: number | readonly [number, number];
  groups?: number;
}
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor, o: Conv2dOptions = {}): Tensor {
  return wrap(
    native.call(
      O.conv2d,
      x.native,
      weight.native,
      bias?.native ?? null,
      o.stride ?? 1,
      o.padding ?? 0,
      o.dilation ?? 1,
      o.groups ?? 1,
    ),
  );
}

export interface BatchNormOptions {
  weight?: Tensor;
  bias?: Tensor;
  runningMean?: Tensor;
  runningVar?: Tensor;
  training: boolean;
  momentum?: number;
  eps?: number;
}
/** Batch normalisation over dim 1; in training it updates the running statistics in place. */
export function batchNorm(x: Tensor, o: BatchNormOptions): Tensor {
  return wrap(
    native.call(
      O.batchNorm,
      x.native,
      o.weight?.native ?? null,
      o.bias?.native ?? null,
      o.runningMean?.native ?? null,
      o.runningVar?.native ?? null,
      o.training,
      o.momentum ?? 0.1,
      o.eps ?? 1e-5,
      true,
    ),
  );
}
export function prelu(x: Tensor, weight: Tensor): Tensor {
  return wrap(native.call(O.prelu, x.native, weight.native));
}
export function linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  return wrap(native.call(O.linear, x.native, weight.native, bias?.native ?? null));
}
export function dropout(x: Tensor, p: number, training: boolean): Tensor {
  if (p < 0 || p > 1) throw new RangeError(`dropout: p must be in [0, 1], got ${p}`);
  return wrap(native.call(O.dropout, x.native, p, training));
}
export function relu(x: Tensor): Tensor {
  return x.relu();
}
export function maxPool2d(x: Tensor, kernel: number, stride?: number, padding = 0): Tensor {
  return wrap(native.call(O.maxPool2d, x.native, kernel, stride ?? kernel, padding));
}
export function adaptiveAvgPool2d(x: Tensor, size: number | readonly [number, number]): Tensor {
  return wrap(native.call(O.adaptiveAvgPool2d, x.native, typeof size === "number" ? [size, size] : size));
}
export function softmax(x: Tensor, dim: number): Tensor {
  return x.softmax(dim);
}
export function logSoftmax(x: Tensor, dim: number): Tensor {
  return x.logSoftmax(dim);
}

export type Reduction = "none" | "mean" | "sum";
const REDUCTION: Record<Reduction, number> = { none: 0, mean: 1, sum: 2 };

export interface CrossEntropyOptions {
  reduction?: Reduction;
  ignoreIndex?: number;
  labelSmoothing?: number;
  weight?: Tensor;
}
/** Softmax cross-entropy of logits [N, C] against integer labels [N]. */
export function crossEntropy(logits: Tensor, labels: Tensor, o: CrossEntropyOptions = {}): Tensor {
  return wrap(
    native.call(
      O.crossEntropy,
      logits.native,
      labels.native,
      o.weight?.native ?? null,
      REDUCTION[o.reduction ?? "mean"],
      o.ignoreIndex ?? -100,
      o.labelSmoothing ?? 0,
    ),
  );
}
export function nllLoss(logProbs: Tensor, labels: Tensor, o: CrossEntropyOptions = {}): Tensor {
  return wrap(
    native.call(
      O.nllLoss,
      logProbs.native,
      labels.native,
      o.weight?.native ?? null,
      REDUCTION[o.reduction ?? "mean"],
      o.ignoreIndex ?? -100,
    ),
  );
}
export function mseLoss(a: Tensor, b: Tensor, reduction: Reduction = "mean"): Tensor {
  return wrap(native.call(O.mseLoss, a.native, b.native, REDUCTION[reduction]));
}
/** x / max(‖x‖_p, eps) along dim, as torch.nn.functional.normalize. */
export function normalize(x: Tensor, dim = 1, p = 2, eps = 1e-12): Tensor {
  using n = x.norm(p, dim, true);
  using c = n.clamp(eps);
  return x.div(c);
}
export function oneHot(labels: Tensor, numClasses: number): Tensor {
  return wrap(native.call(O.oneHot, labels.native, numClasses));
}
