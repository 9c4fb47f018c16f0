// One optimisation step of the recipe, shared by the trainer and the equivalence tests:
// backbone forward → head (distributed margin softmax) → backward → gradient sync → clip →
// optimizer steps of the backbone and of this rank's head shard.
import * as T from "../torch/index.ts";
import { type DataParallel } from "../dist/index.ts";
import { type PartialFC } from "../head/index.ts";
import { type Optimizer, clipGradNorm } from "../optim/index.ts";

type AnyOptimizer = Optimizer<{ lr: number } & Record<string, number | boolean>>;

export interface StepParts {
  forward: (x: T.Tensor) => T.Tensor;
  /** Called after loss.backward() (e.g. the backbone's checkpoint tape), before gradient sync. */
  afterLossBackward?: () => void;
  backboneParams: readonly T.Tensor[];
  dp: DataParallel;
  head: PartialFC;
  backboneOpt: AnyOptimizer;
  headOpt: AnyOptimizer;
  /** Backbone gradient norm clip; 0 = off. */
  clipNorm: number;
}

/** Runs one step on this rank's batch; returns the global-batch loss (the same on every rank). */
export function trainStep(p: StepParts, x: T.Tensor, y: T.Tensor): number {
  return T.scope(() => {
    p.backboneOpt.zeroGrad();
    p.headOpt.zeroGrad();
    const emb = p.forward(x);
    // The head computes the shard gradient and the (world-scaled) feature gradient here, so the
    // backbone's averaged gradient is the true gradient of the mean global loss.
    const loss = p.head.forward(emb, y);
    p.dp.beforeBackward();
    loss.backward();
    p.afterLossBackward?.();
    p.dp.afterBackward();
    if (p.clipNorm > 0) clipGradNorm(p.backboneParams, p.clipNorm);
    p.backboneOpt.step();
    p.headOpt.step();
    return loss.item();
  });
}
