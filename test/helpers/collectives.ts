// worldSize ranks in one process for the pair-evaluation tests: src/eval's Collectives without a
// process group, so that multi-rank runs are checked against the single-process result quickly.
import type { Collectives } from "../../src/eval/collectives.ts";

interface Round {
  kind: "sum" | "gather";
  parts: (Float64Array | Float32Array | undefined)[];
  waiters: ((parts: (Float64Array | Float32Array)[]) => void)[];
  arrived: number;
}

/** worldSize ranks: the i-th call of each rank meets the i-th call of every other, as in a real group. */
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
