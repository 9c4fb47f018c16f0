// The model-parallel classification head: class-centre shards, Partial FC sampling, the
// distributed margin softmax cross-entropy with its own backward, and its fused chunked form.
export { PartialFC, type HeadOptions, type HeadOptimizer, type HeadStepOptions } from "./partial-fc.ts";
export {
  FusedPartialFC,
  blockClasses,
  fusedHeadBytes,
  type FusedHeadOptions,
  type RowOptimizer,
} from "./fused.ts";
export { classShard, initialShardWeight, INIT_BLOCK, type ClassShard } from "./shard.ts";
