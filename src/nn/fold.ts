// BatchNorm folding primitives: an eval-mode BatchNorm is an affine map per channel,
// y = x·a + c with a = γ/√(σ²+ε) and c = β − μ·a, so it can be absorbed exactly into a linear
// layer next to it. Models decide where this is valid (see src/models); these do the algebra.
import * as T from "../torch/index.ts";
import { type Tensor } from "../torch/index.ts";
import { type BatchNorm1d, type BatchNorm2d, type Conv2d, type Linear } from "./layers.ts";

type AnyBatchNorm = BatchNorm1d | BatchNorm2d;

/** The per-channel scale a and shift c of an eval-mode BatchNorm, in f64 for exact-enough folding. */
export function batchNormAffine(bn: AnyBatchNorm): { scale: Tensor; shift: Tensor } {
  if (!bn.runningMean || !bn.runningVar) {
    throw new Error("foldBatchNorm: a BatchNorm without running statistics cannot be folded");
  }
  const { runningMean: mean, runningVar: varr, weight, bias, eps } = bn;
  return T.noGrad(() =>
    T.scope(() => {
      const inv = varr.to("f64").add(eps).rsqrt();
      const scale = weight ? inv.mul(weight.to("f64")) : inv;
      const shift = mean.to("f64").mul(scale).neg();
      return { scale, shift: bias ? shift.add(bias.to("f64")) : shift };
    }),
  );
}

/** conv → BN becomes one conv with a bias: W' = W·a (per output channel), b' = b·a + c. */
export function foldIntoPreceding(layer: Conv2d | Linear, bn: AnyBatchNorm): void {
  T.scope(() => {
    const { scale, shift } = batchNormAffine(bn);
    const w = layer.weight;
    const view = [w.size(0), ...w.shape.slice(1).map(() => 1)];
    const dtype = w.dtype;
    T.noGrad(() =>
      w.copy_(
        w
          .to("f64")
          .mul(scale.reshape(...view))
          .to(dtype),
      ),
    );
    const b = layer.bias ? layer.bias.to("f64").mul(scale).add(shift) : shift;
    layer.setBias(T.noGrad(() => b.to(dtype)).requiresGrad_(true));
  });
}

/**
 * BN2d(C) → flatten → Linear becomes one Linear: each input feature j belongs to channel
 * j / (H·W), so W' = W·a[ch(j)] and b' = b + W·c[ch(j)]. Exact (no padding is involved).
 */
export function foldIntoFollowingLinear(bn: AnyBatchNorm, fc: Linear): void {
  T.scope(() => {
    const { scale, shift } = batchNormAffine(bn);
    const channels = scale.size(0);
    const inFeatures = fc.weight.size(1);
    if (inFeatures % channels !== 0) {
      throw new Error(`foldBatchNorm: ${inFeatures} inputs are not a whole number of ${channels} channels`);
    }
    const perChannel = inFeatures / channels;
    const a = scale.unsqueeze(1).expand(channels, perChannel).reshape(inFeatures);
    const c = shift.unsqueeze(1).expand(channels, perChannel).reshape(inFeatures);
    const w = fc.weight.to("f64");
    const dtype = fc.weight.dtype;
    const extra = w.matmul(c);
    const b = fc.bias ? fc.bias.to("f64").add(extra) : extra;
    T.noGrad(() => fc.weight.copy_(w.mul(a.unsqueeze(0)).to(dtype)));
    fc.setBias(T.noGrad(() => b.to(dtype)).requiresGrad_(true));
  });
}
