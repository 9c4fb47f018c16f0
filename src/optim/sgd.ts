// SGD with momentum, dampening, Nesterov and L2 weight decay, exactly as torch.optim.SGD.
import * as T from "../torch/index.ts";
import { type Tensor } from "../torch/index.ts";
import { Optimizer } from "./optimizer.ts";

export interface SGDOptions extends Record<string, number | boolean> {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

/** A block's update in SGD.stepRows: rows [start, start + count), their gradient (or rows `at`'s). */
export type RowUpdate = (start: number, count: number, grad: Tensor, at?: Tensor) => void;

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
    const buf = this.#buffer(p, state, h);
    T.scope(() => sgdUpdate(p, grad, buf?.tensor, buf?.fresh ?? false, h));
  }

  /**
   * One step of `p` whose gradient arrives in row blocks: `rows` calls `update(start, count, grad,
   * at)` for blocks [start, start + count) covering every row once, and each block gets step()'s
   * arithmetic at once. `grad` is the block's gradient, or with `at` (positions in the block) the
   * gradient of those rows alone, the others' being zero. The fused head (src/head) computes its
   * weight gradient chunk by chunk this way, so no dense gradient of its shard ever exists.
   */
  stepRows(p: Tensor, rows: (update: RowUpdate) => void): void {
    const group = this.groups.find((g) => g.params.includes(p));
    if (group === undefined)
      throw new Error("SGD.stepRows: the tensor is not one of this optimizer's parameters");
    let state = this.state.get(p);
    if (state === undefined) this.state.set(p, (state = new Map()));
    this.stepCount.set(p, (this.stepCount.get(p) ?? 0) + 1);
    const h = group.options;
    const buf = this.#buffer(p, state, h);
    T.noGrad(() =>
      rows((start, count, grad, at) =>
        T.scope(() => {
          const block = p.narrow(0, start, count);
          const b = buf?.tensor.narrow(0, start, count);
          const fresh = buf?.fresh ?? false;
          if (at === undefined) sgdUpdate(block, grad, b, fresh, h);
          else if (h.nesterov) {
            const dense = T.zeros(block.shape, { dtype: grad.dtype, device: grad.device });
            sgdUpdate(block, dense.indexPut_([at], grad), b, fresh, h);
          } else sgdSparseUpdate(block, grad, at, b, fresh, h);
        }),
      ),
    );
  }

  /** The momentum buffer (undefined without momentum); fresh: allocated now, torch's first step. */
  #buffer(
    p: Tensor,
    state: Map<string, Tensor>,
    h: SGDOptions,
  ): { tensor: Tensor; fresh: boolean } | undefined {
    if (h.momentum === 0) return undefined;
    const old = state.get("momentum_buffer");
    if (old !== undefined) return { tensor: old, fresh: false };
    const tensor = T.empty(p.shape, { dtype: p.dtype, device: p.device }).keep();
    state.set("momentum_buffer", tensor);
    return { tensor, fresh: true };
  }
}

/** torch.optim.SGD's update of `p` (or a block of its rows); a fresh buffer is set to d, not decayed. */
function sgdUpdate(p: Tensor, grad: Tensor, buf: Tensor | undefined, fresh: boolean, h: SGDOptions): void {
  let d = h.weightDecay !== 0 ? grad.add(p, h.weightDecay) : grad;
  if (buf !== undefined) {
    if (fresh) buf.copy_(d);
    else buf.mul_(h.momentum).add_(d, 1 - h.dampening);
    d = h.nesterov ? d.add(buf, h.momentum) : buf;
  }
  p.add_(d, -h.lr);
}

/**
 * sgdUpdate for a gradient that is zero outside rows `at` (given as `grad`), without Nesterov
 * (index_put with accumulate: CPU index_add_ on rows runs one small op per row):
 * decay and momentum sweep the block once and the gradient is added to its rows only, so no
 * dense gradient nor d = grad + decay·p is made.
 */
function sgdSparseUpdate(
  p: Tensor,
  grad: Tensor,
  at: Tensor,
  buf: Tensor | undefined,
  fresh: boolean,
  h: SGDOptions,
): void {
  if (buf === undefined) {
    if (h.weightDecay !== 0) p.mul_(1 - h.lr * h.weightDecay);
    p.indexPut_([at], grad.mul(-h.lr), true);
    return;
  }
  if (fresh) buf.copy_(p).mul_(h.weightDecay).indexPut_([at], grad, true);
  else {
    buf.mul_(h.momentum);
    if (h.weightDecay !== 0) buf.add_(p, (1 - h.dampening) * h.weightDecay);
    buf.indexPut_([at], h.dampening === 0 ? grad : grad.mul(1 - h.dampening), true);
  }
  p.add_(buf, -h.lr);
}
