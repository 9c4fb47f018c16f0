export { CombinedMargin, MARGIN_PRESETS, type CombinedMarginOptions, type MarginPreset } from "./margin.ts";
export {
  featureDistill,
  distillationLoss,
  CHALLENGE_DISTILL_LAMBDA,
  type DistillWeighting,
} from "./distill.ts";
