// 10-fold verification accuracy exactly as InsightFace arcface_torch's eval/verification.py
// reports it ("Accuracy-Flip"): squared L2 distance of the normalised flip-sum embeddings of each
// pair, thresholds 0, 0.01, ..., 3.99; for each fold (contiguous, sklearn KFold without shuffle)
// the threshold with the best accuracy on the other folds (first one on ties) is applied to the
// fold; the result is the mean and population standard deviation of the fold accuracies.

export interface KFoldAccuracy {
  /** Mean fold accuracy. */
  accuracy: number;
  /** Population standard deviation (numpy's np.std) of the fold accuracies. */
  std: number;
  foldAccuracy: number[];
  bestThreshold: number[];
}

/** numpy's np.arange(0, 4, 0.01): i * 0.01 for i < 400. */
export const ARCFACE_THRESHOLDS: readonly number[] = Array.from({ length: 400 }, (_, i) => i * 0.01);

/** Contiguous folds as sklearn's KFold(n_splits, shuffle=False): the first n % k are one longer. */
export function foldBounds(n: number, folds: number): [number, number][] {
  if (folds < 2 || folds > n)
    throw new Error(`10-fold accuracy needs 2 <= folds <= pairs, got ${folds} folds, ${n} pairs`);
  const out: [number, number][] = [];
  let start = 0;
  for (let f = 0; f < folds; f++) {
    const size = Math.floor(n / folds) + (f < n % folds ? 1 : 0);
    out.push([start, start + size]);
    start += size;
  }
  return out;
}

/**
 * embeddings: 2·pairs rows of dim values (pair i = rows 2i, 2i+1), already normalised.
 */
export function kfoldAccuracy(
  embeddings: Float64Array,
  dim: number,
  issame: readonly boolean[],
  folds = 10,
  thresholds: readonly number[] = ARCFACE_THRESHOLDS,
): KFoldAccuracy {
  const n = issame.length;
  if (embeddings.length !== 2 * n * dim)
    throw new Error(`kfold: ${embeddings.length / dim} embeddings for ${n} pairs (want ${2 * n})`);
  const dist = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let d = 0; d < dim; d++) {
      const diff = embeddings[2 * i * dim + d]! - embeddings[(2 * i + 1) * dim + d]!;
      s += diff * diff;
    }
    dist[i] = s;
  }
  // correct[t][i]: does threshold t classify pair i right (predict same when dist < t)?
  const correctIn = (t: number, from: number, to: number): number => {
    let c = 0;
    for (let i = from; i < to; i++) if (dist[i]! < t === issame[i]) c++;
    return c;
  };
  const foldAccuracy: number[] = [];
  const bestThreshold: number[] = [];
  for (const [a, b] of foldBounds(n, folds)) {
    let best = -1;
    let bestIdx = 0;
    thresholds.forEach((t, idx) => {
      const right = correctIn(t, 0, a) + correctIn(t, b, n);
      if (right > best) {
        best = right;
        bestIdx = idx;
      }
    });
    const t = thresholds[bestIdx]!;
    bestThreshold.push(t);
    foldAccuracy.push(correctIn(t, a, b) / (b - a));
  }
  const accuracy = foldAccuracy.reduce((s, x) => s + x, 0) / folds;
  const std = Math.sqrt(foldAccuracy.reduce((s, x) => s + (x - accuracy) ** 2, 0) / folds);
  return { accuracy, std, foldAccuracy, bestThreshold };
}

/** (first + second) normalised row by row in float64, as arcface_torch does with its flip pair. */
export function flipSumNormalise(
  first: ArrayLike<number>,
  second: ArrayLike<number>,
  dim: number,
): Float64Array {
  const out = new Float64Array(first.length);
  for (let r = 0; r < first.length / dim; r++) {
    let norm = 0;
    for (let d = 0; d < dim; d++) {
      const v = first[r * dim + d]! + second[r * dim + d]!;
      out[r * dim + d] = v;
      norm += v * v;
    }
    norm = Math.sqrt(norm);
    for (let d = 0; d < dim; d++) out[r * dim + d] = norm > 0 ? out[r * dim + d]! / norm : 0;
  }
  return out;
}
