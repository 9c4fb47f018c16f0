// Which classes each rank owns. Same split as arcface_torch's PartialFC_V2, so shards line up
// with checkpoints written by either: rank r owns C//W + (r < C%W) contiguous classes starting at
// C//W·r + min(r, C%W).
import * as T from "../torch/index.ts";

export interface ClassShard {
  rank: number;
  worldSize: number;
  /** First global class id owned by this rank. */
  start: number;
  /** How many classes this rank owns. */
  count: number;
}

export function classShard(numClasses: number, rank: number, worldSize: number): ClassShard {
  if (!Number.isInteger(numClasses) || numClasses < worldSize) {
    throw new Error(`head: numClasses must be an integer ≥ the world size (${worldSize}), got ${numClasses}`);
  }
  const base = Math.floor(numClasses / worldSize);
  const rest = numClasses % worldSize;
  return {
    rank,
    worldSize,
    start: base * rank + Math.min(rank, rest),
    count: base + (rank < rest ? 1 : 0),
  };
}

/** Classes per block of the world-size-independent initialisation. */
export const INIT_BLOCK = 1 << 16;

/**
 * The initial centres [shard.count, D] ~ N(0, 0.01) (arcface_torch's init), drawn block by block
 * from seeds that depend on the block's global position only: the same model comes out for any
 * world size, which the reshard and equivalence tests rely on. The global RNG is left untouched.
 */
export function initialShardWeight(shard: ClassShard, embeddingSize: number, seed: number): T.Tensor {
  using saved = T.getRngState();
  try {
    return T.noGrad(() => {
      const out = T.empty([shard.count, embeddingSize]);
      const end = shard.start + shard.count;
      for (let b = Math.floor(shard.start / INIT_BLOCK); b * INIT_BLOCK < end; b++) {
        T.scope(() => {
          T.manualSeed(BigInt(seed) * 1000003n + BigInt(b));
          const lo = b * INIT_BLOCK;
          const block = T.randn([INIT_BLOCK, embeddingSize]).mul(0.01);
          const from = Math.max(lo, shard.start);
          const to = Math.min(lo + INIT_BLOCK, end);
          out.narrow(0, from - shard.start, to - from).copy_(block.narrow(0, from - lo, to - from));
        });
      }
      return out;
    });
  } finally {
    T.setRngState(saved);
  }
}
