export {
  IResNet,
  IBasicBlock,
  INPUT_SIZE,
  iresnetCost,
  iresnetBlocks,
  type BlockShape,
  type IResNetOptions,
  type StageBlocks,
} from "./iresnet.ts";
export { MobileFaceNet, mobileFaceNetCost, type MobileFaceNetOptions } from "./mobilefacenet.ts";
export { type CheckpointPolicy } from "./common.ts";
export {
  PRESETS,
  PRESET_NAMES,
  buildBackbone,
  backboneCost,
  foldBatchNorm,
  presetTable,
  resolvePreset,
  type Backbone,
  type BackboneName,
  type BackboneOptions,
  type BackboneSpec,
  type Preset,
  type PresetRow,
  type PresetName,
} from "./registry.ts";
export {
  CHECKPOINT_KEYS,
  describeBackbone,
  inferDescriptor,
  listCheckpoints,
  loadBackboneCheckpoint,
  newestIfRunDir,
  saveBackboneCheckpoint,
  type BackboneDescriptor,
  type LoadedBackbone,
} from "./backbone-file.ts";
