// The exact fallback for thresholds deeper than the kept tail: two more passes over the blocks,
// counting order keys of impostor scores (radix.ts) instead of keeping scores.
import * as T from "../torch/index.ts";
import type { Collectives } from "./collectives.ts";
import type { Block, SubsetName } from "./layout.ts";
import { RADIX, highBuckets, lowBits, orderKeys, scoreOfKey, walkDown } from "./radix.ts";
import type { PairScorer } from "./scorer.ts";

export interface RadixAsk {
  /** The subset, and the group subsets whose blocks make it up. */
  name: SubsetName;
  sources: readonly SubsetName[];
  /** 1-based rank from the top among the subset's impostor scores. */
  k: number;
}

type RunPass = (pass: "radix-high" | "radix-low", each: (b: Block) => void) => Promise<void>;

const OP_BINCOUNT = T.opId("aten::bincount");

function counts(values: T.Tensor): BigInt64Array | undefined {
  if (values.numel === 0) return undefined;
  return T.wrap(T.callOp(OP_BINCOUNT, values, null, RADIX)).data() as BigInt64Array;
}

function addAt(hist: Float64Array, offset: number, c: BigInt64Array | undefined): void {
  if (c === undefined) return;
  for (let i = 0; i < RADIX; i++) if (c[i] !== 0n) hist[offset + i]! += Number(c[i]);
}

/** The exact k-th largest impostor score of each ask (all ranks get the same answers). */
export async function resolveByRadix(
  scorer: PairScorer,
  asks: readonly RadixAsk[],
  coll: Collectives,
  run: RunPass,
): Promise<number[]> {
  const names = [...new Set(asks.map((a) => a.name))];
  const sourcesOf = (name: SubsetName) => asks.find((a) => a.name === name)!.sources;
  const usersOf = (block: Block): number[] => {
    const src = block.subset ?? "all";
    return names.flatMap((n, i) => (sourcesOf(n).includes(src) ? [i] : []));
  };

  // High 16 bits: which bucket holds each k-th score.
  const high = new Float64Array(names.length * RADIX);
  await run("radix-high", (block) => {
    const users = usersOf(block);
    if (users.length === 0) return;
    const c = counts(highBuckets(orderKeys(scorer.score(block).scores)));
    for (const u of users) addAt(high, u * RADIX, c);
  });
  const highAll = await coll.allReduceSum(high);
  const at = asks.map((a) => walkDown(highAll, a.k, names.indexOf(a.name) * RADIX));

  // Low 16 bits inside those buckets: the score itself.
  const cells: { name: number; bucket: number }[] = [];
  const cellOf = asks.map((a, i) => {
    const name = names.indexOf(a.name);
    const bucket = at[i]!.index;
    let c = cells.findIndex((x) => x.name === name && x.bucket === bucket);
    if (c < 0) c = cells.push({ name, bucket }) - 1;
    return c;
  });
  const low = new Float64Array(cells.length * RADIX);
  await run("radix-low", (block) => {
    const users = new Set(usersOf(block));
    const mineCells = cells.flatMap((c, i) => (users.has(c.name) ? [i] : []));
    if (mineCells.length === 0) return;
    const keys = orderKeys(scorer.score(block).scores);
    const buckets = highBuckets(keys);
    const done = new Map<number, BigInt64Array | undefined>();
    for (const i of mineCells) {
      const b = cells[i]!.bucket;
      if (!done.has(b)) done.set(b, counts(lowBits(keys.indexSelect(0, buckets.eq(b).nonzero().view(-1)))));
      addAt(low, i * RADIX, done.get(b));
    }
  });
  const lowAll = await coll.allReduceSum(low);
  return asks.map((_, i) => {
    const c = cellOf[i]!;
    const { index } = walkDown(lowAll, at[i]!.rank, c * RADIX);
    return scoreOfKey(cells[c]!.bucket, index);
  });
}
