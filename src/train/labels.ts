// Labels outside the head's classes would index past its class centres (or, sharded, silently
// land on no rank): every batch is checked before the step, by its min and max (B integers).
import type { Batch } from "../data/index.ts";

/**
 * Throws, naming the record and the config key, if a label of `batch` is not in [0, numClasses).
 * `whence` says where numClasses came from (head.numClasses, or the dataset's declared count).
 */
export function checkBatchLabels(
  batch: Batch,
  numClasses: number,
  whence: string,
  describe: (index: number) => string,
): void {
  const labels = batch.labels;
  let lo = 0;
  let hi = 0;
  for (let i = 1; i < labels.length; i++) {
    if (labels[i]! < labels[lo]!) lo = i;
    if (labels[i]! > labels[hi]!) hi = i;
  }
  for (const i of [lo, hi]) {
    const label = labels[i];
    if (label === undefined || (label >= 0 && label < numClasses)) continue;
    const fix =
      label < 0
        ? "every training image needs an identity"
        : `set head.numClasses to the number of identities (at least ${label + 1})`;
    throw new Error(
      `${describe(batch.indices[i]!)}: label ${label} is outside the head's ${numClasses} classes ` +
        `(${whence}); ${fix}, or fix the dataset's labels`,
    );
  }
}
