// The trainer: config, one step, checkpoints (save, resume, reshard), the training loop.
export {
  TrainConfigSchema,
  defineConfig,
  parseConfig,
  applyOverrides,
  loadConfigFile,
  headIsFused,
  verifySetName,
  type TrainConfig,
  type TrainConfigInput,
} from "./config.ts";
export { TrainStep, type StepModel, type StepOptions, type StepOutcome, type ParamGroups } from "./step.ts";
export { createGradientSync, type GradientSync, type SyncOptions } from "./sync.ts";
export {
  Precision,
  LossScaler,
  DEFAULT_LOSS_SCALE,
  type AmpMode,
  type LossScaleOptions,
} from "./precision.ts";
export {
  saveCheckpoint,
  loadCheckpoint,
  loadHeadShard,
  listCheckpoints,
  pruneCheckpoints,
  readManifest,
  verifyCheckpoint,
  CorruptCheckpointError,
  type Manifest,
  type TrainState,
} from "./checkpoint.ts";
export { train, type TrainEvent, type TrainOptions, type TrainResult, type StepMetrics } from "./trainer.ts";
export { Verifier, type VerifyResult } from "./verify.ts";
export { DistillTerm } from "./distill/term.ts";
export { openTeacher, resolveTeacherPath, type Teacher, type TeacherOptions } from "./distill/teacher.ts";
export {
  FeatureStore,
  FEATURE_STORE_FORMAT,
  datasetIdentity,
  type StoreAugment,
  type StoreManifest,
} from "./distill/store.ts";
export { writeFeatureStore, type WriteFeaturesOptions, type WriteFeaturesResult } from "./distill/write.ts";
export { baseLr } from "./optim-config.ts";
export { memoryPlan, activationElements, type MemoryPlan, type PlanRow } from "./memory-plan.ts";
export { runInfo, writeRunInfo, gitCommit, type RunInfo } from "./run-info.ts";
