// ONNX files as bytes: the messages mfr writes and reads, encoded and decoded by protobufjs
// against ONNX's own schema (./onnx.proto, copied from the onnx/onnx repository). Only the fields
// mfr uses are typed here; the schema itself is never re-stated by hand, so field numbers and
// wire types are ONNX's.
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";

/** TensorProto.DataType values mfr writes or inspects. */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  FLOAT16: 10,
  DOUBLE: 11,
  BFLOAT16: 16,
} as const;

/** Names of TensorProto.DataType values, for messages. */
export const DATA_TYPE_NAMES: Record<number, string> = {
  0: "UNDEFINED",
  1: "FLOAT",
  2: "UINT8",
  3: "INT8",
  4: "UINT16",
  5: "INT16",
  6: "INT32",
  7: "INT64",
  8: "STRING",
  9: "BOOL",
  10: "FLOAT16",
  11: "DOUBLE",
  12: "UINT32",
  13: "UINT64",
  16: "BFLOAT16",
};

/** AttributeProto.AttributeType values. */
export const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

export interface TensorMsg {
  name: string;
  dims: number[];
  dataType: number;
  /** Little-endian element bytes. */
  rawData?: Uint8Array;
  floatData?: number[];
  int64Data?: number[];
  /** DataLocation.EXTERNAL on tensors whose bytes are in a side file (ONNX external data). */
  dataLocation?: number;
  /** For external data: "location" (relative to the model's folder), "offset", "length". */
  externalData?: { key: string; value: string }[];
}

/** TensorProto.DataLocation. */
export const DataLocation = { DEFAULT: 0, EXTERNAL: 1 } as const;

export interface AttributeMsg {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorMsg;
  floats?: number[];
  ints?: number[];
}

export interface NodeMsg {
  name: string;
  opType: string;
  domain?: string;
  input: string[];
  output: string[];
  attribute?: AttributeMsg[];
}

/** One dimension: a fixed size or a symbolic name (dynamic). */
export type DimMsg = { dimValue: number } | { dimParam: string };

export interface ValueInfoMsg {
  name: string;
  type: { tensorType: { elemType: number; shape?: { dim?: DimMsg[] } } };
  docString?: string;
}

export interface GraphMsg {
  name: string;
  node: NodeMsg[];
  initializer: TensorMsg[];
  input: ValueInfoMsg[];
  output: ValueInfoMsg[];
  docString?: string;
}

export interface ModelMsg {
  irVersion: number;
  opsetImport: { domain: string; version: number }[];
  producerName: string;
  producerVersion: string;
  docString?: string;
  graph: GraphMsg;
  metadataProps: { key: string; value: string }[];
}

let modelType: protobuf.Type | undefined;

/** onnx.ModelProto from the bundled schema, parsed once (about 0.1 s). */
function modelProto(): protobuf.Type {
  if (modelType === undefined) {
    const root = protobuf.loadSync(fileURLToPath(new URL("./onnx.proto", import.meta.url)));
    modelType = root.lookupType("onnx.ModelProto");
  }
  return modelType;
}

/** Serialises a model (callers keep it under protobuf's 2 GiB message limit). */
export function encodeModel(model: ModelMsg): Uint8Array {
  const M = modelProto();
  const bytes = M.encode(M.fromObject(model as unknown as Record<string, unknown>)).finish();
  return bytes;
}

/** Parses ONNX bytes into plain objects (int64 fields as numbers, bytes as Uint8Array). */
export function decodeModel(bytes: Uint8Array, source = "model"): ModelMsg {
  const M = modelProto();
  let msg: protobuf.Message;
  try {
    msg = M.decode(bytes);
  } catch (e) {
    throw new Error(`${source}: not an ONNX model (${(e as Error).message})`, { cause: e });
  }
  const obj = M.toObject(msg, { longs: Number, arrays: true, defaults: false }) as unknown as ModelMsg;
  if (obj.graph === undefined) throw new Error(`${source}: not an ONNX model (it has no graph)`);
  for (const k of ["node", "initializer", "input", "output"] as const) obj.graph[k] ??= [];
  obj.metadataProps ??= [];
  obj.opsetImport ??= [];
  return obj;
}

/** The usual ONNX IR version for an opset (onnx's helper.VERSION_TABLE): older checkers refuse newer IRs. */
export function irVersionFor(opset: number): number {
  const table: [number, number][] = [
    [9, 4],
    [10, 5],
    [11, 6],
    [12, 7],
    [15, 8],
    [19, 9],
    [21, 10],
    [23, 11],
  ];
  let ir = 3;
  for (const [o, v] of table) if (opset >= o) ir = v;
  return ir;
}
