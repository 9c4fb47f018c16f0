// SGD with momentum, dampening, Nesterov and L2 weight decay, exactly as torch.optim.SGD.
import { type Tensor } from "../torch/index.ts";
import { Optimizer } from "./optimizer.ts";

export interface SGDOptions extends Record<string, number | boolean> {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

export class SGD extends Optimizer<SGDOptions> {
  constructor(
    params: Tensor[] | { params: Tensor[]; options?: Partial<SGDOptions> }[],
    o: Partial<SGDOptions> & { lr: number },
  ) {
    super(params, { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, ...o });
    if (o.nesterov && (!(o.momentum ?? 0) || (o.dampening ?? 0) !== 0)) {
      throw new Error("SGD: nesterov needs momentum > 0 and dampening = 0");
    }
  }
  protected update(p: Tensor, grad: Tensor, state: Map<string, Tensor>, h: SGDOptions): void {
    let d = grad;
    if (h.weightDecay !== 0) d = grad.add(p, h.weightDecay);
    if (h.momentum !== 0) {
      let buf = state.get("momentum_buffer");
      if (buf === undefined) {
        buf = d.clone().keep();
        state.set("momentum_buffer", buf);
      } else {
        buf.mul_(h.momentum).add_(d, 1 - h.dampening);
      }
      d = h.nesterov ? d.add(buf, h.momentum) : buf;
    }
    p.add_(d, -h.lr);
  }
}
