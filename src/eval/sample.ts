// The row sample behind the bulk of the curves and the first guess of each tail's floor. Before
// the score pass, every stride-th row of each tile (row i) is scored against every later row
// (j > i, the pairs the score pass gives that row), one product per column tile, and the
// impostor scores are histogrammed per group subset: a sample of 1/stride of the pairs, for
// about 1/stride of the score pass's work.
import * as T from "../torch/index.ts";
import { HIST_BINS, sampleHistogram } from "./curve.ts";
import { fillAt, through, using } from "./handles.ts";
import { type Layout, type SubsetName, type Tile, groupSubset, runAt } from "./layout.ts";
import type { PairScorer } from "./scorer.ts";

const ROWS_STEP = 128;

/** Empty histograms, one per source (the group subsets, or "all" without groups). */
export function emptyHistograms(sources: readonly SubsetName[]): Map<SubsetName, Float64Array> {
  return new Map(sources.map((s) => [s, new Float64Array(HIST_BINS)]));
}

/** How many sampled rows (positions ascending) lie before position end. */
function rowsBefore(positions: Int32Array, end: number): number {
  let lo = 0;
  let hi = positions.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (positions[mid]! < end) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Flat indices, in the [rows, tile width] block of the first `rows` sampled rows against a
 * tile, of the pairs that are not counted: column j <= row i, or the same label (genuine).
 */
export function sampleMaskIndices(
  layout: Layout,
  positions: Int32Array,
  rows: number,
  tile: Tile,
): Int32Array {
  const width = tile.end - tile.start;
  const colRuns = layout.runOf[tile.group]!;
  // Per row: columns [tile.start, first) come at or before the row; [g0, g1) are its genuine pairs.
  const spans = new Int32Array(3 * rows);
  let total = 0;
  for (let r = 0; r < rows; r++) {
    const p = positions[r]!;
    const first = Math.max(tile.start, Math.min(tile.end, p + 1));
    const ci = colRuns.get(layout.runs[runAt(layout.runs, p)]!.label);
    const run = ci === undefined ? undefined : layout.runs[ci]!;
    const g0 = run === undefined ? first : Math.max(run.start, first);
    const g1 = run === undefined ? first : Math.max(g0, Math.min(run.end, tile.end));
    spans.set([first, g0, g1], 3 * r);
    total += first - tile.start + (g1 - g0);
  }
  const out = new Int32Array(total);
  let o = 0;
  for (let r = 0; r < rows; r++) {
    const [first, g0, g1] = [spans[3 * r]!, spans[3 * r + 1]!, spans[3 * r + 2]!];
    const base = r * width - tile.start;
    for (let j = tile.start; j < first; j++) out[o++] = base + j;
    for (let j = g0; j < g1; j++) out[o++] = base + j;
  }
  return out;
}

/**
 * Adds to hists (by source) the impostor scores between the sampled rows before the tile's end
 * and the tile's rows after them. Call inside T.scope.
 */
export function sampleTile(
  scorer: PairScorer,
  layout: Layout,
  tile: Tile,
  hists: ReadonlyMap<SubsetName, Float64Array>,
): void {
  const positions = scorer.samplePositions;
  const rows = rowsBefore(positions, tile.end);
  if (rows === 0) return;
  // Whole multiples of ROWS_STEP rows go through the GEMM (the rest is dropped): oneDNN builds a
  // kernel for each new shape, which would cost more than the extra rows.
  const padded = Math.min(positions.length, Math.ceil(rows / ROWS_STEP) * ROWS_STEP);
  const scores = through(scorer.sampleScores(padded, tile), (s) => s.narrow(0, 0, rows));
  const masked = sampleMaskIndices(layout, positions, rows, tile);
  if (masked.length > 0)
    fillAt(
      scores,
      through(T.tensor(masked, { dtype: "i32" }), (i) => i.to("i64")),
      -Infinity,
    );
  if (!layout.hasGroups) {
    sampleHistogram(scores, hists.get("all")!);
    return;
  }
  // Sampled rows run in layout order: the unmasked group first, then the masked one.
  const masks = layout.tiles.find((t) => t.group === 1)?.start ?? layout.n;
  const split = rowsBefore(positions.subarray(0, rows), masks);
  for (const [group, r0, r1] of [
    [0, 0, split],
    [1, split, rows],
  ] as const)
    if (r1 > r0)
      using(scores.narrow(0, r0, r1 - r0), (part) =>
        sampleHistogram(part, hists.get(groupSubset(group, tile.group))!),
      );
}
