// The config's `optim` section as objects: the optimizer for any parameter groups (the backbone's,
// its ZeRO pieces, the head shard), the learning rate the run starts from, and the schedule.
import { type ProcessGroup } from "../distributed/index.ts";
import { AdamW, LARS, SGD, type ScheduleOptions, linearScaledLr, wholeLayers } from "../optim/index.ts";
import { type Tensor } from "../torch/index.ts";
import { type TrainConfig } from "./config.ts";
import { type AnyOptimizer, type ParamGroups } from "./sync.ts";

/**
 * The base rate: optim.lr, or with optim.referenceBatch the linear scaling rule (Goyal et al.):
 * lr × global batch / referenceBatch, the global batch being data.batchSize × world size.
 */
export function baseLr(cfg: Pick<TrainConfig, "optim" | "data">, worldSize: number): number {
  const o = cfg.optim;
  if (o.referenceBatch === undefined) return o.lr;
  return linearScaledLr(o.lr, cfg.data.batchSize * worldSize, o.referenceBatch);
}

/** Warm-up, then the configured decay, over the run's steps (milestones count steps too). */
export function scheduleOptions(cfg: Pick<TrainConfig, "optim" | "steps">): ScheduleOptions {
  const d = cfg.optim.decay;
  return {
    warmupIters: Math.min(cfg.optim.warmupSteps, cfg.steps - 1),
    totalIters: cfg.steps,
    decay:
      typeof d === "string" ? { kind: d } : { kind: "multistep", milestones: d.milestones, gamma: d.gamma },
  };
}

/** The configured optimizer at rate `lr` over some parameter groups. */
export function optimizerFactory(o: TrainConfig["optim"], lr: number): (groups: ParamGroups) => AnyOptimizer {
  const wd = o.weightDecay;
  switch (o.name) {
    case "sgd":
      return (g) => new SGD(g, { lr, momentum: o.momentum, weightDecay: wd }) as AnyOptimizer;
    case "adamw":
      return (g) => new AdamW(g, { lr, weightDecay: wd }) as AnyOptimizer;
    case "lars":
      return (g) => new LARS(g, { lr, momentum: o.momentum, weightDecay: wd }) as AnyOptimizer;
  }
}

/**
 * The optimizer of this rank's head shard. The shard is rows of one layer spread over the ranks,
 * so a layer-wise rule (LARS) sums its norms over the group: the same update on any world size.
 */
export function headOptimizer(
  make: (groups: ParamGroups) => AnyOptimizer,
  group: ProcessGroup,
  weight: Tensor,
): AnyOptimizer {
  const opt = make([{ params: [weight] }]);
  opt.useLayout(wholeLayers([weight], (t) => group.allReduce([t]).wait()));
  return opt;
}
