// LARS (You et al., 2017): SGD with momentum whose per-layer step is rescaled by the trust ratio
// η·‖w‖/‖g + λw‖, so every layer moves by a similar fraction of its norm whatever the batch size
// (the challenge trained with LARS and linear LR scaling).
//
// Exempt: every parameter with ≤ 1 dimension — BatchNorm γ and β, the biases of every layer, and
// PReLU slopes — gets neither the trust ratio nor weight decay, plain SGD with momentum: MoCo v3's
// LARS rule (SimCLR's exempts BatchNorm and biases by name; LARC users configure it through
// parameter groups). `excludeBnAndBias: false` adapts them too. The rule goes by the layer's
// shape, so it holds for ZeRO's flat pieces as well (their layout names each element's layer).
//
// The norms are whole-layer norms: a layout (./layout.ts) says which layer each stretch of a
// parameter belongs to, each rank sums the squares of the stretches it holds, and one all-reduce
// of a [layers, 2] tensor per step completes them — so LARS on ZeRO pieces, or on a model-parallel
// head shard, equals LARS on the whole tensors. Everything stays on tensors: no device sync.
import * as T from "../torch/index.ts";
import { type Tensor } from "../torch/index.ts";
import { type LayerLayout, type Stretch, wholeLayers } from "./layout.ts";
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
  #layout: LayerLayout;
  /** The step under way's trust ratio per layer. */
  #trust: Tensor | undefined;

  constructor(
    params: Tensor[] | { params: Tensor[]; options?: Partial<LARSOptions> }[],
    o: Partial<LARSOptions> & { lr: number },
  ) {
    super(params, { momentum: 0.9, weightDecay: 0, trustCoefficient: 0.001, excludeBnAndBias: true, ...o });
    this.#layout = wholeLayers(this.groups.flatMap((g) => g.params));
  }

  override useLayout(layout: LayerLayout): void {
    this.#layout = layout;
  }

  /** Whether a layer of `ndim` dimensions gets the trust ratio and weight decay under options `h`. */
  static adapts(ndim: number, h: LARSOptions): boolean {
    return !(h.excludeBnAndBias && ndim <= 1);
  }

  override step(): void {
    this.#trust = T.noGrad(() => this.#trustRatios().keep());
    try {
      super.step();
    } finally {
      this.#trust.dispose();
      this.#trust = undefined;
    }
  }

  #adapting(p: Tensor, h: LARSOptions): Stretch[] {
    return this.#layout.stretches(p).filter((s) => LARS.adapts(this.#layout.ndims[s.layer]!, h));
  }

  /** [layers]: η‖w‖/‖g + λw‖ of every layer (1 where either norm is 0, or the layer is exempt). */
  #trustRatios(): Tensor {
    return T.scope(() => {
      const first = this.groups.find((g) => g.params.length > 0)?.params[0];
      const like = { dtype: first?.dtype ?? "f32", device: first?.device ?? "cpu" };
      const partial: Tensor[][] = this.#layout.ndims.map(() => []);
      for (const g of this.groups) {
        const h = g.options;
        for (const p of g.params) {
          const grad = p.grad;
          if (grad === undefined) continue;
          const pv = p.reshape(-1);
          const gv = grad.reshape(-1);
          for (const s of this.#adapting(p, h)) {
            const w = pv.narrow(0, s.at, s.len);
            const gs = gv.narrow(0, s.at, s.len);
            const d = h.weightDecay !== 0 ? gs.add(w, h.weightDecay) : gs;
            // η² folded in: a layer lies in one group, so every partial sum carries the same η.
            const eta2 = h.trustCoefficient ** 2;
            partial[s.layer]!.push(T.stack([w.square().sum().mul(eta2), d.square().sum()]));
          }
        }
      }
      if (partial.length === 0) return T.zeros([0], like);
      const none = T.zeros([2], like);
      const sums = T.stack(partial.map((ps) => (ps.length === 0 ? none : T.stack(ps).sum(0))));
      this.#layout.allReduce(sums);
      const w2 = sums.select(1, 0);
      const d2 = sums.select(1, 1);
      return T.where(w2.gt(0).logicalAnd(d2.gt(0)), w2.div(d2).sqrt(), 1);
    });
  }

  protected update(p: Tensor, grad: Tensor, state: Map<string, Tensor>, h: LARSOptions): void {
    T.scope(() => {
      const d = this.#direction(p, grad, h);
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

  /** (g + λw)·trust on the adapted stretches of p, g elsewhere. */
  #direction(p: Tensor, grad: Tensor, h: LARSOptions): Tensor {
    const trust = this.#trust!;
    const adapting = this.#adapting(p, h);
    if (adapting.length === 0) return grad;
    const wd = h.weightDecay;
    const s = adapting[0]!;
    if (adapting.length === 1 && s.len === p.numel)
      return (wd !== 0 ? grad.add(p, wd) : grad).mul(trust.select(0, s.layer));
    const d = grad.clone();
    const dv = d.view(-1);
    const pv = p.reshape(-1);
    for (const a of adapting) {
      const v = dv.narrow(0, a.at, a.len);
      if (wd !== 0) v.add_(pv.narrow(0, a.at, a.len), wd);
      v.mul_(trust.select(0, a.layer));
    }
    return d;
  }
}
