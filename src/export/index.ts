// Export: BatchNorm folding (src/models), the ONNX writer, verification in onnxruntime-node, the
// MFR challenge's submission rules. (Embedding extraction is src/eval's.)
export {
  DEFAULT_OPSET,
  OPSET_RANGE,
  INPUT_NAME,
  OUTPUT_NAME,
  backboneToOnnx,
  checkOpset,
  exportMetadata,
  mfrVersion,
  parseBatch,
  type BatchSpec,
  type OnnxExportOptions,
  type OnnxModelInfo,
} from "./onnx.ts";
export { decodeModel, encodeModel, irVersionFor, DataType, type ModelMsg } from "./onnx-proto.ts";
export { GraphBuilder, lowerModel, attr, type GraphValue } from "./lower.ts";
export { MFR_RULES, checkMfrRules, assertMfrRules, rulesFailure, type RuleResult } from "./rules.ts";
export {
  DEFAULT_TOLERANCE,
  compareEmbeddings,
  mfrForward,
  verifyOnnx,
  type CaseResult,
  type Tolerance,
  type VerifyCase,
} from "./verify.ts";
export {
  exportCheckpoint,
  checkOnnxFile,
  type ExportOptions,
  type ExportReport,
} from "./export-checkpoint.ts";
export { OnnxSession, type GraphOptimization, type SessionOptions } from "./runtime.ts";
export {
  openImageSource,
  readImages,
  syntheticFaces,
  randomImages,
  flipImages,
  IMAGE_FLOATS,
} from "./images.ts";
