// ROC points (TPR at each FPR on a log grid) from what the pass kept: the exact top of the
// impostor scores (the tail) and, beyond it, a histogram of a row sample of all impostors.

import * as T from "../torch/index.ts";
import { type TargetFpr, fprOf, thresholdRank } from "./fpr.ts";
import { through, using } from "./handles.ts";

/** Histogram range and resolution for the impostor row sample and the genuine scores. */
export const HIST_BINS = 8192;
export const HIST_MIN = -1.001;
export const HIST_MAX = 1.001;

export function binLow(b: number): number {
  return HIST_MIN + ((HIST_MAX - HIST_MIN) * b) / HIST_BINS;
}

/** One point of a curve: the threshold for FPR x and the TPR there. */
export interface CurvePoint {
  fpr: number;
  threshold: number;
  tpr: number;
  /** false where the threshold was read from the sampled histogram instead of the exact tail. */
  exact: boolean;
}

/** FPRs from 10^from to 1, perDecade per decade (1e-7 .. 1 by default). */
export function fprGrid(perDecade = 10, from = -7): TargetFpr[] {
  const out: TargetFpr[] = [];
  for (let i = from * perDecade; i <= 0; i++) {
    const v = Number((10 ** (i / perDecade)).toPrecision(6));
    out.push(fprOf(v));
  }
  return out;
}

/**
 * Thresholds for the grid: exact where rank k lies in the tail (the tail holds the largest
 * impostors, all of them when it is as long as n), else the lower edge of the sampled
 * histogram's bin where the scaled count from the top reaches k.
 */
export function gridThresholds(
  grid: readonly TargetFpr[],
  impostors: number,
  tail: Float32Array,
  sampled: Float64Array | undefined,
): { fpr: number; threshold: number; exact: boolean }[] {
  const out: { fpr: number; threshold: number; exact: boolean }[] = [];
  let total = 0;
  if (sampled) for (const c of sampled) total += c;
  for (const x of grid) {
    const k = thresholdRank(x, impostors);
    if (k === 0) continue;
    if (k <= tail.length) {
      out.push({ fpr: x.value, threshold: tail[k - 1]!, exact: true });
      continue;
    }
    if (!sampled || total === 0) continue;
    const scale = impostors / total;
    let cum = 0;
    let b = HIST_BINS - 1;
    for (; b > 0; b--) {
      cum += sampled[b]! * scale;
      if (cum >= k) break;
    }
    out.push({ fpr: x.value, threshold: Math.fround(binLow(b)), exact: false });
  }
  return out;
}

/** Number of values in an ascending-sorted array that are greater than t. */
export function countAbove(sortedAscending: Float32Array, t: number): number {
  let lo = 0;
  let hi = sortedAscending.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sortedAscending[mid]! > t) hi = mid;
    else lo = mid + 1;
  }
  return sortedAscending.length - lo;
}

const OP_BINCOUNT = T.opId("aten::bincount");

/**
 * Adds a histogram of scores (HIST_BINS bins over [HIST_MIN, HIST_MAX)) to acc. Masked pairs
 * (-inf) and anything below the range land in an extra bin that is dropped. Not aten::histc:
 * it costs ~50 ns per value here, this a few (bin + 1 = trunc((s - HIST_MIN)·scale + 1), in
 * four elementwise ops and a bincount).
 */
export function sampleHistogram(scores: T.Tensor, acc: Float64Array): void {
  if (scores.numel === 0) return;
  const scale = HIST_BINS / (HIST_MAX - HIST_MIN);
  const bins = through(
    scores
      .mul(scale)
      .add_(1 - HIST_MIN * scale)
      .clamp_(0, HIST_BINS),
    (s) => through(s.to("i32"), (b) => b.reshape(-1)),
  );
  const counts = using(
    bins,
    (b) => T.wrap(T.callOp(OP_BINCOUNT, b, null, HIST_BINS + 1)).data() as BigInt64Array,
  );
  for (let i = 0; i < HIST_BINS; i++) if (counts[i + 1] !== 0n) acc[i]! += Number(counts[i + 1]);
}

/**
 * A guess of a lower bound for the keep-th largest of `impostors` scores, from a histogram of a
 * sample of them: the lower edge of the bin below the highest bin at which the sampled count from
 * the top passes the expected count (keep scaled to the sample) by six standard deviations and
 * 16 more. -Infinity when nothing can be ruled out or the sample is too thin. Only a guess: the
 * caller checks that at least keep scores came out above it.
 */
export function guessFloor(sampled: Float64Array, impostors: number, keep: number): number {
  let total = 0;
  for (const c of sampled) total += c;
  if (keep >= impostors || total === 0) return -Infinity;
  const expected = (keep * total) / impostors;
  const want = expected + 6 * Math.sqrt(expected) + 16;
  let cum = 0;
  for (let b = HIST_BINS - 1; b > 0; b--) {
    cum += sampled[b]!;
    if (cum >= want) return Math.fround(binLow(b - 1));
  }
  return -Infinity;
}
