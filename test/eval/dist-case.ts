// The data and options shared by test/eval/dist.test.ts and its worker processes.
import * as T from "../../src/torch/index.ts";
import type { PairEvalInput, PairEvalOptions } from "../../src/eval/index.ts";

const FPRS = ["0", "1e-7", "1e-3", "0.01", "0.5", "1"];

export const DIST_CASES: Record<string, PairEvalOptions> = {
  tail: { fpr: FPRS, blockSize: 40, rocSampleStride: 2, rocTailFpr: 0.01 },
  bounded: { fpr: FPRS, blockSize: 40, candidateLimit: 3, genuineLimit: 0, rocTailFpr: 0 },
};

/** Deterministic in every process: integer-hashed labels and groups, seeded embeddings. */
export function distInput(): PairEvalInput {
  const n = 150;
  T.manualSeed(11);
  const labels = Array.from({ length: n }, (_, i) => (i * 7919) % 23);
  const groups = Array.from({ length: n }, (_, i) => ((i * 104729) % 5 < 2 ? 1 : 0));
  const centres = T.randn([23, 12]);
  const embeddings = centres
    .indexSelect(0, T.tensor(Int32Array.from(labels)).to("i64"))
    .add(T.randn([n, 12]));
  return { embeddings, labels, groups };
}
