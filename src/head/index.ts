// The model-parallel classification head: class-centre shards, Partial FC sampling, the
// distributed margin softmax cross-entropy with its own backward.
export { PartialFC, type HeadOptions } from "./partial-fc.ts";
export { classShard, initialShardWeight, INIT_BLOCK, type ClassShard } from "./shard.ts";
