// Evaluation: embedding extraction, exact TPR@FPR over all pairs (masked/unmasked subsets), .bin
// verification sets, reports. See docs/eval.md.
export {
  OnnxEmbedder,
  TorchEmbedder,
  embedDataset,
  embedToFiles,
  openEmbedder,
  type Embedder,
  type EmbedOptions,
  type EmbedProgress,
  type Embeddings,
} from "./embed.ts";
export {
  evaluatePairs,
  DEFAULT_FPRS,
  type PairEvalInput,
  type PairEvalOptions,
  type PairEvalProgress,
  type PairEvaluation,
  type SubsetResult,
} from "./pairs.ts";
export { type Collectives, singleProcess, processGroupCollectives } from "./collectives.ts";
export { parseFpr, parseFprList, thresholdRank, type TargetFpr } from "./fpr.ts";
export { GROUP_SUBSETS, type SubsetName, type PairCounts } from "./layout.ts";
export type { CurvePoint } from "./curve.ts";
export type { GemmKind } from "./scorer.ts";
export { loadPairInput } from "./input.ts";
export { concatFloat32 } from "./extract.ts";
export {
  evaluationJson,
  writeReport,
  curveSvg,
  chartSvg,
  curveData,
  CURVES_FILE,
  type CurveData,
  type CurveKind,
  type ReportFiles,
} from "./report.ts";
export {
  loadVerificationSet,
  parseVerificationSet,
  verifySet,
  embedWithFlips,
  scoreVerificationSet,
  decodeFaces,
  flipHorizontal,
  type VerificationSet,
  type SetVerification,
  type EmbedFn,
  type FlipEmbeddings,
} from "./bin.ts";
export { kfoldAccuracy, flipSumNormalise, type KFoldAccuracy } from "./kfold.ts";
export { openOnnxTeacher, type OnnxTeacher } from "./teacher.ts";
