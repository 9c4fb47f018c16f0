// LARS (You et al., 2017): SGD with momentum whose per-layer step is rescaled by the trust ratio
// η·‖w‖/‖g + λw‖, so every layer moves by a similar fraction of its norm whatever the batch size
// (the challenge trained with LARS and linear LR scaling). One-dimensional parameters (BatchNorm
// γ/β, biases, PReLU slopes) get neither the trust ratio nor weight decay by default, as in the
// common implementations. The ratio is computed on tensors, so a step never syncs with the device.
import * as T from "../torch/index.ts";
import { type Tensor } from "../torch/index.ts";
import { Optimizer } from "./optimizer.ts";

export interface LARSOptions extends Record<string, number | boolean> {
  lr: number;
  momentum: number;
  weightDecay: number;
  /** η, the trust coefficient. */
  trustCoefficient: number;
  /** Leave parameters with ≤ 1 dimension out of adaptation and weight decay. */
  excludeBnAndBias: boolean;
}

export class LARS extends Optimizer<LARSOptions> {
  constructor(
    params: Tensor[] | { params: Tensor[]; options?: Partial<LARSOptions> }[],
    o: Partial<LARSOptions> & { lr: number },
  ) {
    super(params, { momentum: 0.9, weightDecay: 0, trustCoefficient: 0.001, excludeBnAndBias: true, ...o });
  }

  /** Whether `p` gets the trust ratio and weight decay under options `h`. */
  static adapts(p: Tensor, h: LARSOptions): boolean {
    return !(h.excludeBnAndBias && p.ndim <= 1);
  }

  protected update(p: Tensor, grad: Tensor, state: Map<string, Tensor>, h: LARSOptions): void {
    T.scope(() => {
      let d = grad;
      if (LARS.adapts(p, h)) {
        if (h.weightDecay !== 0) d = grad.add(p, h.weightDecay);
        const pn = p.norm();
        const dn = d.norm();
        const ratio = pn.mul(h.trustCoefficient).div(dn);
        const one = T.onesLike(ratio);
        const trust = T.where(pn.gt(0), T.where(dn.gt(0), ratio, one), one);
        d = d.mul(trust);
      }
      let step = d;
      if (h.momentum !== 0) {
        let buf = state.get("momentum_buffer");
        if (buf === undefined) {
          buf = d.clone().keep();
          state.set("momentum_buffer", buf);
        } else {
          buf.mul_(h.momentum).add_(d);
        }
        step = buf;
      }
      p.add_(step, -h.lr);
    });
  }
}
