// AdamW (decoupled weight decay), step for step as torch.optim.AdamW, with optional AMSGrad.
import * as T from "../torch/index.ts";
import { type Tensor } from "../torch/index.ts";
import { Optimizer } from "./optimizer.ts";

export interface AdamWOptions extends Record<string, number | boolean> {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
}

export class AdamW extends Optimizer<AdamWOptions> {
  constructor(
    params: Tensor[] | { params: Tensor[]; options?: Partial<AdamWOptions> }[],
    o: Partial<AdamWOptions> & { lr: number },
  ) {
    super(params, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-2, amsgrad: false, ...o });
    for (const b of ["beta1", "beta2"] as const) {
      const v = this.groups[0]?.options[b] ?? 0;
      if (!(v >= 0 && v < 1)) throw new Error(`AdamW: ${b} must be in [0, 1), got ${v}`);
    }
  }

  protected update(p: Tensor, grad: Tensor, state: Map<string, Tensor>, h: AdamWOptions, step: number): void {
    if (h.weightDecay !== 0) p.mul_(1 - h.lr * h.weightDecay);
    const m = stateLike(state, "exp_avg", p);
    const v = stateLike(state, "exp_avg_sq", p);
    m.mul_(h.beta1).add_(grad, 1 - h.beta1);
    v.mul_(h.beta2).addcmul_(grad, grad, 1 - h.beta2);
    const bc1 = 1 - h.beta1 ** step;
    const bc2Sqrt = Math.sqrt(1 - h.beta2 ** step);
    let second = v;
    if (h.amsgrad) {
      const vmax = stateLike(state, "max_exp_avg_sq", p);
      vmax.copy_(vmax.maximum(v));
      second = vmax;
    }
    const denom = second.sqrt().div_(bc2Sqrt).add_(h.eps);
    p.addcdiv_(m, denom, -h.lr / bc1);
  }
}

/** The state tensor `name`, created as zeros shaped like p on first use. */
export function stateLike(state: Map<string, Tensor>, name: string, p: Tensor): Tensor {
  let t = state.get(name);
  if (t === undefined) {
    t = T.zerosLike(p).keep();
    state.set(name, t);
  }
  return t;
}
