// A backbone as an ONNX model: the lowered graph, its input/output signature, opset and IR
// version, and metadata saying how to feed it (normalisation, layout, size) and what it returns.
import { mfrVersion } from "../torch/index.ts";
import { type Backbone, type BackboneDescriptor, INPUT_SIZE } from "../models/index.ts";
import { type ExternalData, GraphBuilder, lowerModel } from "./lower.ts";
import { DataType, type DimMsg, type ModelMsg, encodeModel, irVersionFor } from "./onnx-proto.ts";

export const DEFAULT_OPSET = 17;
/** Opsets whose definitions of every op mfr emits are the ones the writer follows. */
export const OPSET_RANGE = [9, 23] as const;
export const INPUT_NAME = "input";
export const OUTPUT_NAME = "embedding";
/** protobuf refuses messages of 2 GiB or more: past this, weights go to an external data file. */
const MAX_MODEL_BYTES = 2 ** 31 - 1;
/** Weights above this size are written as external data (room left for the graph itself). */
export const MAX_INLINE_WEIGHT_BYTES = MAX_MODEL_BYTES - 64 * 1024 * 1024;

/** "dynamic": any batch size at run time (dim_param "batch"); a number fixes it. */
export type BatchSpec = "dynamic" | number;

export interface OnnxExportOptions {
  opset?: number;
  batch?: BatchSpec;
  /** String metadata (metadata_props); see exportMetadata. */
  metadata?: Record<string, string>;
  docString?: string;
  /** Stream the weights into this file (ONNX external data) instead of the protobuf. */
  externalData?: ExternalData;
}

export interface OnnxModelInfo {
  opset: number;
  irVersion: number;
  nodes: number;
  initializers: number;
  /** Nodes by op type. */
  ops: Record<string, number>;
  /** Output shape; "batch" where dynamic. */
  outputShape: (number | string)[];
  /** The external data file's name and size, when the weights are there. */
  externalData?: { location: string; bytes: number };
}

/** The metadata every mfr export carries: how to feed the model and what it is. */
export function exportMetadata(d: BackboneDescriptor, bnFolded: boolean): Record<string, string> {
  return {
    "mfr.version": mfrVersion(),
    "mfr.backbone": d.backbone,
    "mfr.width": String(d.width),
    "mfr.num_features": String(d.numFeatures),
    "mfr.embedding_size": String(d.numFeatures),
    "mfr.bn_folded": String(bnFolded),
    "mfr.input_layout": `NCHW float32 [batch, 3, ${INPUT_SIZE}, ${INPUT_SIZE}], RGB, ArcFace 5-point aligned`,
    "mfr.input_normalisation": "(x - 127.5) / 127.5",
    "mfr.input_mean": "127.5",
    "mfr.input_std": "127.5",
    "mfr.output": "embedding [batch, D], not L2-normalised: normalise before comparing by cosine",
  };
}

export function parseBatch(v: string): BatchSpec {
  if (v === "dynamic") return "dynamic";
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`--batch: expected 'dynamic' or a positive integer, got '${v}'`);
  return n;
}

export function checkOpset(opset: number): number {
  const [lo, hi] = OPSET_RANGE;
  if (!Number.isInteger(opset) || opset < lo || opset > hi)
    throw new Error(`opset ${opset} is not supported: use ${lo}..${hi} (default ${DEFAULT_OPSET})`);
  return opset;
}

/** Writes `model` (eval mode; fold its BatchNorms first if wanted) as ONNX bytes. */
export function backboneToOnnx(
  model: Backbone,
  o: OnnxExportOptions = {},
): { bytes: Uint8Array; info: OnnxModelInfo } {
  const opset = checkOpset(o.opset ?? DEFAULT_OPSET);
  const batch = o.batch ?? "dynamic";
  const g = new GraphBuilder(opset, o.externalData);
  const input = { name: INPUT_NAME, shape: ["N", 3, INPUT_SIZE, INPUT_SIZE] as (number | "N")[] };
  const out = lowerModel(model, input, g);
  if (!o.externalData && g.dataBytes > MAX_INLINE_WEIGHT_BYTES)
    throw new Error(
      `export: ${(g.dataBytes / 2 ** 30).toFixed(2)} GiB of weights exceed what one ONNX protobuf can hold (2 GiB); ` +
        "write them as external data",
    );
  // The last node's output is renamed to the graph output.
  const last = g.nodes.at(-1);
  if (!last || last.output[0] !== out.name) throw new Error("export: the graph ends in no node");
  last.output = [OUTPUT_NAME];
  const dim = (d: number | "N"): DimMsg =>
    d === "N" ? (batch === "dynamic" ? { dimParam: "batch" } : { dimValue: batch }) : { dimValue: d };
  const valueInfo = (name: string, shape: (number | "N")[]) => ({
    name,
    type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: shape.map(dim) } } },
  });
  const irVersion = irVersionFor(opset);
  const msg: ModelMsg = {
    irVersion,
    opsetImport: [{ domain: "", version: opset }],
    producerName: "mfr",
    producerVersion: mfrVersion(),
    docString: o.docString ?? "",
    graph: {
      name: "mfr_backbone",
      node: g.nodes,
      initializer: g.initializers,
      input: [valueInfo(INPUT_NAME, input.shape)],
      output: [valueInfo(OUTPUT_NAME, out.shape)],
    },
    metadataProps: Object.entries(o.metadata ?? {}).map(([key, value]) => ({ key, value })),
  };
  const ops: Record<string, number> = {};
  for (const n of g.nodes) ops[n.opType] = (ops[n.opType] ?? 0) + 1;
  return {
    bytes: encodeModel(msg),
    info: {
      opset,
      irVersion,
      nodes: g.nodes.length,
      initializers: g.initializers.length,
      ops,
      outputShape: out.shape.map((d) => (d === "N" ? (batch === "dynamic" ? "batch" : batch) : d)),
      ...(o.externalData ? { externalData: { location: o.externalData.location, bytes: g.dataBytes } } : {}),
    },
  };
}
