// The trainer: config, one step, checkpoints (save, resume, reshard), the training loop.
export {
  TrainConfigSchema,
  defineConfig,
  parseConfig,
  applyOverrides,
  loadConfigFile,
  type TrainConfig,
  type TrainConfigInput,
} from "./config.ts";
export { trainStep, type StepParts } from "./step.ts";
export {
  saveCheckpoint,
  loadCheckpoint,
  loadHeadShard,
  listCheckpoints,
  pruneCheckpoints,
  type Manifest,
} from "./checkpoint.ts";
export {
  train,
  type TrainEvent,
  type TrainOptions,
  type TrainResult,
  type StepMetrics,
  type VerifyHook,
} from "./trainer.ts";
