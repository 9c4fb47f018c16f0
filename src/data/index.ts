// mfr's data layer: datasets (RecordIO, folders, lists), the sharded sampler, the decode worker
// pool and loader, mask synthesis and synthetic identities. Batch -> tensor hand-over lives in
// ./tensors.ts (the only file here that loads libtorch).
export * from "./recordio.ts";
export * from "./dataset.ts";
export { RecDataset, readProperty, recPaths, writeRecDataset, type RecProperty } from "./rec-dataset.ts";
export { openFolderDataset, openListDataset, type FolderDataset } from "./folder-dataset.ts";
export { openDataset } from "./open.ts";
export { ShardedSampler, type SamplerOptions, type TailPolicy } from "./sampler.ts";
export {
  DataLoader,
  DEFAULT_MASK_TILES,
  recordMaskSeed,
  type Batch,
  type BadSampleWarning,
  type LoaderOptions,
  type RecordMasks,
} from "./loader.ts";
export { ImageDecoder, type OutputDType, type Layout, type DecoderChoice, type JpegMode } from "./decode.ts";
export { JPEG_MODES } from "./turbojpeg.ts";
export { inspectDataset, type DatasetInfo, type CorruptSample } from "./info.ts";
export { MAX_IMAGE_PIXELS, sniffImage } from "./image-size.ts";
export { packDataset } from "./pack.ts";
export { Rng, hash32, hashString } from "./rng.ts";
export { ARCFACE_TEMPLATE, similarityTransform, type Landmarks5 } from "./mask/template.ts";
export { MASK_KINDS, maskSvg, sampleMaskParams, type MaskKind, type MaskParams } from "./mask/shapes.ts";
export { MaskBank, maskImage, renderMaskTile, blendTile } from "./mask/render.ts";
export { maskFolder, maskGroups, readLandmarks } from "./mask/folder.ts";
export { sampleIdentity, sampleVariation, type Identity, type Variation } from "./synth/face.ts";
export { renderFace } from "./synth/render.ts";
export { synthesizeDataset, synthFace, encodeJpeg } from "./synth/write.ts";
