// The brute-force reference: every pair's score materialised, impostors sorted, the definition
// applied literally. Scores come either from the engine's own block scorer (so the reference
// checks selection, ties, subsets and combination, not GEMM rounding) or from exact arithmetic
// on inputs whose dot products are exact in float32.
import * as T from "../../src/torch/index.ts";
import { thresholdRank, fprOf } from "../../src/eval/fpr.ts";
import type { SubsetName } from "../../src/eval/layout.ts";
import { PairScorer } from "../../src/eval/scorer.ts";
import { type PairEvalInput, type SubsetResult, prepareLayout } from "../../src/eval/pairs.ts";

export interface ScoredPair {
  i: number;
  j: number;
  score: number;
}

/**
 * Every pair's score as the engine computes it: the same row order, tiles and kernel as
 * evaluatePairs with this block size. Pairs are reported in original row indices.
 */
export function engineScores(input: PairEvalInput, blockSize: number): ScoredPair[] {
  const layout = prepareLayout(input, blockSize);
  const scorer = new PairScorer(input.embeddings, layout);
  const out: ScoredPair[] = [];
  for (const b of layout.blocks)
    T.scope(() => {
      const w = b.cols.end - b.cols.start;
      const { scores, genuine } = scorer.score(b);
      const d = scores.data() as Float32Array;
      // The scorer masks genuine pairs out of the block and hands them over separately.
      scorer.genuineIndices(b).forEach((at, k) => (d[at] = genuine[k]!));
      for (let r = b.rows.start; r < b.rows.end; r++)
        for (let c = b.diagonal ? r + 1 : b.cols.start; c < b.cols.end; c++) {
          const v = d[(r - b.rows.start) * w + (c - b.cols.start)]!;
          out.push({ i: layout.order[r]!, j: layout.order[c]!, score: v });
        }
    });
  scorer.dispose();
  return out;
}

/** Every pair's score in float64 (exact when the data make it so). */
export function exactScores(rows: readonly (readonly number[])[]): ScoredPair[] {
  const out: ScoredPair[] = [];
  for (let i = 0; i < rows.length; i++)
    for (let j = i + 1; j < rows.length; j++) {
      let s = 0;
      for (let d = 0; d < rows[i]!.length; d++) s += rows[i]![d]! * rows[j]![d]!;
      out.push({ i, j, score: s });
    }
  return out;
}

function subsetOf(gi: number, gj: number): SubsetName {
  return gi !== gj ? "masked-unmasked" : gi === 1 ? "masked-masked" : "unmasked-unmasked";
}

/** The definition, applied to all pairs at once. */
export function bruteForce(
  pairs: readonly ScoredPair[],
  labels: ArrayLike<number>,
  groups: ArrayLike<number> | undefined,
  fprs: readonly string[],
): Partial<Record<SubsetName, SubsetResult>> {
  const names: SubsetName[] = groups
    ? ["all", "masked-unmasked", "masked-masked", "unmasked-unmasked"]
    : ["all"];
  const out: Partial<Record<SubsetName, SubsetResult>> = {};
  for (const name of names) {
    const imp: number[] = [];
    const gen: number[] = [];
    for (const p of pairs) {
      if (name !== "all" && subsetOf(groups![p.i]!, groups![p.j]!) !== name) continue;
      (labels[p.i] === labels[p.j] ? gen : imp).push(p.score);
    }
    imp.sort((a, b) => b - a);
    const tpr: Record<string, number | null> = {};
    const threshold: Record<string, number | null> = {};
    for (const key of fprs) {
      const k = thresholdRank(fprOf(key), imp.length);
      const tau = k === 0 ? null : imp[k - 1]! + 0;
      threshold[key] = tau;
      tpr[key] = tau === null || gen.length === 0 ? null : gen.filter((g) => g > tau).length / gen.length;
    }
    out[name] = { genuine: gen.length, impostor: imp.length, tpr, threshold };
  }
  return out;
}
