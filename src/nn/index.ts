export { Module, type Layer } from "./module.ts";
export * from "./layers.ts";
export * as init from "./init.ts";
export { CheckpointTape, isReplaying } from "./checkpoint.ts";
export { batchNormAffine, foldIntoPreceding, foldIntoFollowingLinear } from "./fold.ts";
