// Verification over all pairs: TPR at target FPRs, exactly, in memory independent of the number
// of pairs. Definition (docs/eval.md): impostor scores sorted descending s1 >= s2 >= ... >= sn;
// for a target FPR x, k = floor(x·n) + 1 and τ = s_k (s_n if k > n); TPR = |{genuine > τ}| / G.
//
// A sample pass scores every 128th row against the rows after it (1/128 of the work) and
// histograms those impostor scores: the bulk of the ROC curve, and a guess of a floor below the
// K-th largest impostor score of each subset (K = the largest k asked for, at least down to FPR
// rocTailFpr). One pass then scores every block (one GEMM each) and keeps, per subset, the K
// largest impostor scores above that floor (pulling only those out of each block), and every
// genuine score (or, past genuineLimit, nothing: a later pass counts them). A subset that turns
// out to have fewer than K scores above its guessed floor gets a tail pass that keeps its K
// largest with no guess, so the guess only ever costs time. Targets whose k exceeds
// candidateLimit are resolved exactly by two radix passes (radix.ts). Each rank scores its share
// of blocks; collectives combine.
import * as T from "../torch/index.ts";
import { type Collectives, singleProcess } from "./collectives.ts";
import { type CurvePoint, HIST_BINS, countAbove, fprGrid, gridThresholds, guessFloor } from "./curve.ts";
import { type TargetFpr, fprOf, thresholdRank } from "./fpr.ts";
import {
  type Block,
  GROUP_SUBSETS,
  type Layout,
  type PairCounts,
  type SubsetName,
  makeLayout,
} from "./layout.ts";
import { resolveByRadix } from "./radix-pass.ts";
import { emptyHistograms, sampleTile } from "./sample.ts";
import { type GemmKind, PairScorer, withThreads } from "./scorer.ts";
import { TopScores, mergeDescending } from "./topk.ts";
import { checkPairInput } from "./input.ts";
import { concatFloat32, valuesAbove } from "./extract.ts";

export const DEFAULT_FPRS = ["1e-6", "1e-5", "1e-4"] as const;

export interface PairEvalInput {
  /** [n, D] float32/float16/float64; normalised here (cosine similarity). */
  embeddings: T.Tensor;
  /** Identity of each row (int64 ids as bigint, compared exactly). */
  labels: ArrayLike<number> | ArrayLike<bigint>;
  /** 0 = unmasked, 1 = masked; without it only "all" is reported. */
  groups?: ArrayLike<number>;
}

export interface PairEvalProgress {
  /** done/total count column tiles in the sample pass, blocks in the others. */
  pass: "sample" | "score" | "tail" | "radix-high" | "radix-low" | "genuine";
  done: number;
  total: number;
}

export interface PairEvalOptions {
  /** Target FPRs, as typed ("1e-5") or numbers; results are keyed by the text. */
  fpr?: readonly (string | number | TargetFpr)[];
  /** Rows per tile; a block is tile x tile (default 2048). */
  blockSize?: number;
  /** Largest number of impostor scores kept per subset (default 2^23); beyond it, radix passes. */
  candidateLimit?: number;
  /** Largest number of genuine scores kept (default 2^24); beyond it, a counting pass. */
  genuineLimit?: number;
  /**
   * Keep the impostor tail down to this FPR so the curve's thresholds are exact there; above it
   * they come from the sampled histogram (TPR at a threshold is always exact). Default 1e-4, the
   * largest default target: down to 1e-3, ~10x as many scores leave each block and are sorted,
   * 2-3% of the evaluation's time at N = 50 000.
   */
  rocTailFpr?: number;
  /**
   * Histogram every s-th row of each tile against the rows after it, for the curve's bulk and
   * the guess of each tail's floor (default 128: at N = 50 000, ~10^7 sampled pairs, ~10^4 of
   * them above FPR 1e-3; 64 cost ~1.5% more time for a finer bulk of the curves).
   */
  rocSampleStride?: number;
  /**
   * Floors to use instead of the guesses from the sample, by subset (for tests: a floor above
   * the K-th largest impostor score forces the tail pass).
   */
  tailFloors?: Partial<Record<SubsetName, number>>;
  /** Curve points per decade of FPR, 1e-7..1 (default 10). */
  curvePointsPerDecade?: number;
  gemm?: GemmKind;
  collectives?: Collectives;
  onProgress?: (p: PairEvalProgress) => void;
}

export interface SubsetResult {
  genuine: number;
  impostor: number;
  /** By FPR key; null where there is no genuine or no impostor pair. */
  tpr: Record<string, number | null>;
  threshold: Record<string, number | null>;
}

export interface PairEvaluation {
  pairs: PairCounts;
  subsets: Partial<Record<SubsetName, SubsetResult>>;
  /** ROC points per subset (TPR at each FPR of the grid), for plots. */
  curves: Partial<Record<SubsetName, CurvePoint[]>>;
  info: {
    /** The FPR keys, in the order asked for. */
    fprKeys: string[];
    blocks: number;
    blockSize: number;
    passes: string[];
    /** Wall seconds per phase: prepare, sample, score, combine, tail, radix, genuine, total. */
    seconds: Record<string, number>;
    gemm: GemmKind;
    worldSize: number;
    /** The floor each subset's tail was kept above (guessed from the sample), null where none. */
    floors: Partial<Record<SubsetName, number | null>>;
  };
}

/** Where a block's pairs are kept: its group subset, or "all" without groups. */
type Source = SubsetName;

interface SubsetPlan {
  name: SubsetName;
  counts: PairCounts;
  ranks: number[];
  /** How many of the largest impostors to keep. */
  keep: number;
  /** Group subsets that make it up ("all" = every source). */
  sources: Source[];
}

export async function evaluatePairs(
  input: PairEvalInput,
  opts: PairEvalOptions = {},
): Promise<PairEvaluation> {
  const coll = opts.collectives ?? singleProcess;
  const started = performance.now();
  let lapStart = started;
  const seconds: Record<string, number> = {};
  const lap = (phase: string): void => {
    const now = performance.now();
    seconds[phase] = (seconds[phase] ?? 0) + (now - lapStart) / 1000;
    lapStart = now;
  };
  const targets = (opts.fpr ?? DEFAULT_FPRS).map(fprOf);
  const blockSize = opts.blockSize ?? 2048;
  const candidateLimit = opts.candidateLimit ?? 1 << 23;
  const genuineLimit = opts.genuineLimit ?? 1 << 24;
  const stride = opts.rocSampleStride ?? 128;
  const layout = prepareLayout(input, blockSize);
  const sources: Source[] = layout.hasGroups ? [...GROUP_SUBSETS] : ["all"];
  const plans: SubsetPlan[] = [...layout.counts].map(([name, counts]) => {
    const ranks = targets.map((x) => thresholdRank(x, counts.impostor));
    const needed = Math.max(0, ...ranks.filter((k) => k <= candidateLimit));
    const tail = Math.min(candidateLimit, Math.ceil((opts.rocTailFpr ?? 1e-4) * counts.impostor));
    const keep = Math.min(counts.impostor, Math.max(needed, tail));
    return { name, counts, ranks, keep, sources: name === "all" ? sources : [name] };
  });
  const storeGenuine = layout.counts.get("all")!.genuine <= genuineLimit;
  const needHist = plans.some((p) => p.keep < p.counts.impostor);
  const mine = layout.blocks.filter((b) => b.index % coll.worldSize === coll.rank);
  const passes: string[] = [];

  const scorer = new PairScorer(input.embeddings, layout, opts.gemm, needHist ? stride : 0);
  lap("prepare");
  try {
    // ---- sample pass: histograms of a row sample, guesses of the tails' floors ----------------
    let hists = emptyHistograms(sources);
    if (needHist) {
      passes.push("sample");
      const columns = layout.tiles.filter((t) => t.index % coll.worldSize === coll.rank);
      await forEach(columns, "sample", opts, (tile) => sampleTile(scorer, layout, tile, hists));
      hists = splitBy(sources, await coll.allReduceSum(joinBy(sources, hists)));
      lap("sample");
    }
    const floors = new Map(
      plans.map((p) => [
        p.name,
        opts.tailFloors?.[p.name] ??
          (needHist ? guessFloor(sumOf(hists, p.sources), p.counts.impostor, p.keep) : -Infinity),
      ]),
    );

    // ---- score pass: tails above the floors, genuine scores -----------------------------------
    passes.push("score");
    const tails = new Map(plans.map((p) => [p.name, new TopScores(p.keep, floors.get(p.name))]));
    const genuine = new Map<Source, Float32Array[]>(sources.map((s) => [s, []]));
    await forEach(mine, "score", opts, (block) => {
      const { scores, genuine: g } = scorer.score(block);
      if (storeGenuine) genuine.get(block.subset ?? "all")!.push(g);
      offer(block, scores, tails);
    });
    lap("score");

    // ---- combine over ranks; a tail pass where a guessed floor was too high --------------------
    const tail = await mergeTails(plans, tails, coll);
    const short = plans.filter((p) => tail.get(p.name)!.length < p.keep);
    lap("combine");
    if (short.length > 0) {
      passes.push("tail");
      const again = new Map(short.map((p) => [p.name, new TopScores(p.keep)]));
      const from = new Set(short.flatMap((p) => p.sources));
      await forEach(
        mine.filter((b) => from.has(b.subset ?? "all")),
        "tail",
        opts,
        (block) => offer(block, scorer.score(block).scores, again),
      );
      for (const [name, t] of await mergeTails(short, again, coll)) tail.set(name, t);
      lap("tail");
    }

    // ---- thresholds: from the tail, else by radix ------------------------------------------------
    const thresholds = new Map<SubsetName, (number | null)[]>();
    const radixAsks: { name: SubsetName; sources: Source[]; k: number; slot: number }[] = [];
    for (const p of plans) {
      const t = tail.get(p.name)!;
      thresholds.set(
        p.name,
        p.ranks.map((k, i) => {
          if (k === 0) return null;
          if (k <= t.length) return t[k - 1]!;
          radixAsks.push({ name: p.name, sources: p.sources, k, slot: i });
          return null;
        }),
      );
    }
    lap("combine");
    if (radixAsks.length > 0) {
      passes.push("radix-high", "radix-low");
      const found = await resolveByRadix(scorer, radixAsks, coll, (pass, each) =>
        forEach(mine, pass, opts, each),
      );
      radixAsks.forEach((a, i) => (thresholds.get(a.name)![a.slot] = found[i]!));
      lap("radix");
    }

    // ---- genuine counts above every threshold (targets and curve points) -------------------------
    const grid = fprGrid(opts.curvePointsPerDecade ?? 10);
    const points = new Map(
      plans.map((p) => [
        p.name,
        gridThresholds(
          grid,
          p.counts.impostor,
          tail.get(p.name)!,
          needHist ? sumOf(hists, p.sources) : undefined,
        ),
      ]),
    );
    const asked = plans.map((p) => [
      ...thresholds.get(p.name)!.map((t) => t ?? Infinity),
      ...points.get(p.name)!.map((c) => c.threshold),
    ]);
    const local = new Float64Array(asked.reduce((s, a) => s + a.length, 0));
    const countInto = (src: Source, sortedAsc: Float32Array): void => {
      let o = 0;
      plans.forEach((p, i) => {
        if (p.sources.includes(src)) asked[i]!.forEach((t, j) => (local[o + j]! += countAbove(sortedAsc, t)));
        o += asked[i]!.length;
      });
    };
    if (storeGenuine) {
      for (const s of sources) countInto(s, concatFloat32(genuine.get(s)!).sort());
    } else {
      passes.push("genuine");
      const withGenuine = mine.filter((b) => scorer.genuineIndices(b).length > 0);
      await forEach(withGenuine, "genuine", opts, (block) => {
        countInto(block.subset ?? "all", scorer.score(block).genuine.sort());
      });
    }
    const above = await coll.allReduceSum(local);
    lap("genuine");

    // ---- results --------------------------------------------------------------------------------
    const subsets: Partial<Record<SubsetName, SubsetResult>> = {};
    const curves: Partial<Record<SubsetName, CurvePoint[]>> = {};
    let o = 0;
    plans.forEach((p, i) => {
      const G = p.counts.genuine;
      const tpr: Record<string, number | null> = {};
      const threshold: Record<string, number | null> = {};
      targets.forEach((x, j) => {
        const t = thresholds.get(p.name)![j] ?? null;
        threshold[x.key] = t === null ? null : t + 0; // + 0 turns -0 into 0
        tpr[x.key] = t === null || G === 0 ? null : above[o + j]! / G;
      });
      const off = o + targets.length;
      curves[p.name] = G === 0 ? [] : points.get(p.name)!.map((c, j) => ({ ...c, tpr: above[off + j]! / G }));
      subsets[p.name] = { genuine: G, impostor: p.counts.impostor, tpr, threshold };
      o += asked[i]!.length;
    });
    return {
      pairs: { ...layout.counts.get("all")! },
      subsets,
      curves,
      info: {
        fprKeys: targets.map((t) => t.key),
        blocks: layout.blocks.length,
        blockSize,
        passes,
        seconds: { ...seconds, total: (performance.now() - started) / 1000 },
        gemm: scorer.gemm,
        worldSize: coll.worldSize,
        floors: Object.fromEntries([...floors].map(([n, f]) => [n, f === -Infinity ? null : f])),
      },
    };
  } finally {
    scorer.dispose();
  }
}

/**
 * Runs fn on each item (block or tile) inside a tensor scope, on one intra-op thread but for the
 * products (withThreads in scorer.ts says why), yielding to the event loop between items.
 */
async function forEach<I>(
  items: readonly I[],
  pass: PairEvalProgress["pass"],
  opts: PairEvalOptions,
  fn: (item: I) => void,
): Promise<void> {
  for (let i = 0; i < items.length; i++) {
    withThreads(1, () => T.scope(() => fn(items[i]!)));
    opts.onProgress?.({ pass, done: i + 1, total: items.length });
    await new Promise((r) => setImmediate(r));
  }
}

/**
 * Offers a block's impostor scores (genuine pairs and j <= i masked to -inf) to the tails of
 * its subset and of "all" (those present in tails), pulling out only what can still matter.
 */
function offer(block: Block, scores: T.Tensor, tails: ReadonlyMap<SubsetName, TopScores>): void {
  const takers = [tails.get(block.subset ?? "all"), tails.get("all")].filter(
    (t, i, a) => t && a.indexOf(t) === i,
  );
  // Unbounded buffers (still filling, no floor) ask for their k largest; the others for what
  // beats their floor.
  let need = 0;
  let floor = Infinity;
  for (const t of takers as TopScores[]) {
    if (t.bounded) floor = Math.min(floor, t.floor);
    else need = Math.max(need, t.k);
  }
  if (floor === Infinity && need === 0) return;
  const above = valuesAbove(scores, floor, need);
  for (const t of takers as TopScores[]) t.push(above);
}

/** Each tail merged over ranks, largest first (every rank gets the same arrays). */
async function mergeTails(
  plans: readonly SubsetPlan[],
  tails: ReadonlyMap<SubsetName, TopScores>,
  coll: Collectives,
): Promise<Map<SubsetName, Float32Array>> {
  const out = new Map<SubsetName, Float32Array>();
  for (const p of plans)
    out.set(p.name, mergeDescending(await coll.allGather(tails.get(p.name)!.sortedDescending()), p.keep));
  return out;
}

/** Checks the input and lays its rows out in tiles (also used by the brute-force reference). */
export function prepareLayout(input: PairEvalInput, blockSize: number): Layout {
  const { labels, groups } = checkPairInput(input);
  return makeLayout(labels, groups, blockSize);
}

function joinBy(keys: readonly Source[], m: ReadonlyMap<Source, Float64Array>): Float64Array {
  const out = new Float64Array(keys.length * HIST_BINS);
  keys.forEach((k, i) => {
    const h = m.get(k);
    if (h) out.set(h, i * HIST_BINS);
  });
  return out;
}

function splitBy(keys: readonly Source[], flat: Float64Array): Map<Source, Float64Array> {
  return new Map(keys.map((k, i) => [k, flat.subarray(i * HIST_BINS, (i + 1) * HIST_BINS)]));
}

function sumOf(m: ReadonlyMap<Source, Float64Array>, keys: readonly Source[]): Float64Array {
  const out = new Float64Array(HIST_BINS);
  for (const k of keys) {
    const h = m.get(k)!;
    for (let i = 0; i < HIST_BINS; i++) out[i]! += h[i]!;
  }
  return out;
}
