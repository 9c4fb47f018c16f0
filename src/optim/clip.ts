// Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_: one norm over every
// gradient, and all of them scaled by min(1, maxNorm / (norm + 1e-6)). Stays on the device:
// the norm comes back as a 0-dim tensor (read it with .item() when you need the number).
import * as T from "../torch/index.ts";
import { type Tensor } from "../torch/index.ts";

export function clipGradNorm(
  params: readonly Tensor[],
  maxNorm: number,
  o: { normType?: number; errorIfNonfinite?: boolean } = {},
): Tensor {
  const p = o.normType ?? 2;
  return T.noGrad(() =>
    T.scope(() => {
      const grads = params.map((x) => x.grad).filter((g): g is Tensor => g !== undefined);
      if (grads.length === 0) return T.scalarTensor(0);
      const norms = grads.map((g) => (p === Infinity ? g.abs().max() : g.norm(p)));
      const stacked = T.stack(norms);
      const total = p === Infinity ? stacked.max() : stacked.norm(p);
      if (o.errorIfNonfinite && !Number.isFinite(total.item())) {
        throw new Error(`clipGradNorm: the total gradient norm is ${total.item()}`);
      }
      const coef = total.add(1e-6).reciprocal().mul(maxNorm).clamp(undefined, 1);
      for (const g of grads) g.mul_(coef);
      return total;
    }),
  );
}
