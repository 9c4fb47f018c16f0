// The collectives the pair evaluation needs, injected so that the same code runs in one process,
// across the ranks of a src/distributed process group, or across simulated ranks in tests.
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

interface Round {
  kind: "sum" | "gather";
  parts: (Float64Array | Float32Array | undefined)[];
  waiters: ((parts: (Float64Array | Float32Array)[]) => void)[];
  arrived: number;
}

/**
 * worldSize ranks in one process (for tests and single-machine checks): the i-th call of each
 * rank meets the i-th call of every other rank, as in a real process group.
 */
export function simulatedGroup(worldSize: number): Collectives[] {
  if (!Number.isInteger(worldSize) || worldSize < 1) throw new RangeError(`worldSize must be >= 1`);
  const rounds: Round[] = [];
  const calls = new Array<number>(worldSize).fill(0);
  const meet = (rank: number, kind: Round["kind"], data: Float64Array | Float32Array) =>
    new Promise<(Float64Array | Float32Array)[]>((resolve, reject) => {
      const i = calls[rank]!++;
      const round = (rounds[i] ??= { kind, parts: new Array(worldSize), waiters: [], arrived: 0 });
      if (round.kind !== kind) {
        reject(new Error(`collective mismatch at call ${i}: rank ${rank} ran ${kind}, others ${round.kind}`));
        return;
      }
      round.parts[rank] = data.slice();
      round.waiters.push(resolve);
      if (++round.arrived === worldSize) {
        const parts = round.parts as (Float64Array | Float32Array)[];
        for (const w of round.waiters) w(parts);
      }
    });
  return Array.from({ length: worldSize }, (_, rank) => ({
    rank,
    worldSize,
    async allReduceSum(data: Float64Array): Promise<Float64Array> {
      const parts = (await meet(rank, "sum", data)) as Float64Array[];
      const out = new Float64Array(data.length);
      for (const p of parts) {
        if (p.length !== out.length) throw new Error("allReduceSum: ranks passed different lengths");
        for (let j = 0; j < out.length; j++) out[j]! += p[j]!;
      }
      return out;
    },
    async allGather(data: Float32Array): Promise<Float32Array[]> {
      const parts = (await meet(rank, "gather", data)) as Float32Array[];
      return parts.map((p) => p.slice());
    },
  }));
}

/**
 * The collectives over a src/distributed process group (Gloo on CPU). Gathers of arrays whose lengths
 * differ by rank first gather the lengths, then pad to the longest.
 */
export function processGroupCollectives(group: ProcessGroup): Collectives {
  return {
    rank: group.rank,
    worldSize: group.worldSize,
    async allReduceSum(data: Float64Array): Promise<Float64Array> {
      const t = T.tensor(data);
      await group.allReduce([t], "sum").waitAsync();
      const out = t.data() as Float64Array;
      t.dispose();
      return out;
    },
    async allGather(data: Float32Array): Promise<Float32Array[]> {
      const mine = T.tensor(Float64Array.of(data.length));
      const lengths = await group.allGather(mine).waitAsync();
      const sizes = lengths.map((t) => t.item());
      const padded = new Float32Array(Math.max(1, ...sizes));
      padded.set(data);
      const local = T.tensor(padded);
      const parts = await group.allGather(local).waitAsync();
      const out = parts.map((t, r) => (t.data() as Float32Array).slice(0, sizes[r]));
      for (const t of [mine, local, ...lengths, ...parts]) t.dispose();
      return out;
    },
  };
}
