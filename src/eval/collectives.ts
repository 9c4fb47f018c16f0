// The collectives the pair evaluation needs, injected so that the same code runs in one process,
// across the ranks of a src/distributed process group, or across simulated ranks in tests
// (test/helpers/collectives.ts).
// Every rank must make the same calls in the same order.
import * as T from "../torch/index.ts";
import type { ProcessGroup } from "../distributed/index.ts";

export interface Collectives {
  readonly rank: number;
  readonly worldSize: number;
  /** Elementwise sum over ranks; every rank gets the sum. Counts stay exact below 2^53. */
  allReduceSum(data: Float64Array): Promise<Float64Array>;
  /** Every rank's array (lengths may differ), in rank order. */
  allGather(data: Float32Array): Promise<Float32Array[]>;
}

/** One process, one rank: the collectives are identities (the arrays passed, not copies). */
export const singleProcess: Collectives = {
  rank: 0,
  worldSize: 1,
  allReduceSum: (data) => Promise.resolve(data),
  allGather: (data) => Promise.resolve([data]),
};

/**
 * The collectives over a src/distributed process group. Gathers of arrays whose lengths differ by
 * rank first gather the lengths, then pad to the longest. `device` is where the group's backend
 * takes its tensors (a CUDA device for NCCL; the CPU for Gloo).
 */
export function processGroupCollectives(group: ProcessGroup, device = "cpu"): Collectives {
  const put = (data: Float64Array | Float32Array): T.Tensor => {
    const t = T.tensor(data);
    if (device === "cpu") return t;
    const moved = T.toDevice(t, device);
    t.dispose();
    return moved;
  };
  const read = <A extends Float64Array | Float32Array>(t: T.Tensor): A =>
    (t.device === "cpu" ? t.data() : T.scope(() => t.to("cpu").data())) as A;
  return {
    rank: group.rank,
    worldSize: group.worldSize,
    async allReduceSum(data: Float64Array): Promise<Float64Array> {
      using t = put(data);
      await group.allReduce([t], "sum").waitAsync();
      return read<Float64Array>(t);
    },
    async allGather(data: Float32Array): Promise<Float32Array[]> {
      const mine = put(Float64Array.of(data.length));
      const lengths = await group.allGather(mine).waitAsync();
      const sizes = lengths.map((t) => read<Float64Array>(t)[0]!);
      const padded = new Float32Array(Math.max(1, ...sizes));
      padded.set(data);
      const local = put(padded);
      const parts = await group.allGather(local).waitAsync();
      const out = parts.map((t, r) => read<Float32Array>(t).slice(0, sizes[r]));
      for (const t of [mine, local, ...lengths, ...parts]) t.dispose();
      return out;
    },
  };
}
