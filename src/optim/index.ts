export { Optimizer, type ParamGroup, type OptimizerStateDict } from "./optimizer.ts";
export { SGD, type SGDOptions } from "./sgd.ts";
export { AdamW, type AdamWOptions } from "./adamw.ts";
export { LARS, type LARSOptions } from "./lars.ts";
export { LRScheduler, lrFactor, linearScaledLr, type Decay, type ScheduleOptions } from "./schedule.ts";
export { clipGradNorm } from "./clip.ts";
export { decayGroups } from "./groups.ts";
export { optimizerStateToTensors, optimizerStateFromTensors } from "./state-io.ts";
export { ZeroOptimizer, type ZeroOptions, type ZeroInner } from "./zero.ts";
