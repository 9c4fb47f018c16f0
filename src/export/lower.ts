// mfr's module tree as an ONNX graph. Each layer kind has one lowering rule (Conv2d → Conv,
// BatchNorm → BatchNormalization, PReLU → PRelu, Linear → Gemm, Flatten → Flatten, the IR
// block's shortcut → Add); containers lower their children in the order their forward() runs
// them. Layers that are the identity in eval mode (Dropout, the Identity a folded BatchNorm
// leaves behind) emit nothing. Parameter tensors keep their state-dict names as initialiser
// names, so a graph reads like the checkpoint it came from.
import { writeSync } from "node:fs";
import * as T from "../torch/index.ts";
import { type Tensor } from "../torch/index.ts";
import {
  BatchNorm1d,
  BatchNorm2d,
  Conv2d,
  Dropout,
  Flatten,
  Identity,
  Linear,
  type Module,
  PReLU,
  ReLU,
  Sequential,
} from "../nn/index.ts";
import { IBasicBlock, IResNet, MobileFaceNet } from "../models/index.ts";
import {
  AttributeType,
  type AttributeMsg,
  DataLocation,
  DataType,
  type NodeMsg,
  type TensorMsg,
} from "./onnx-proto.ts";

type AnyModule = Module<never[], unknown>;

/** A value flowing through the graph: its name and shape ("N" is the batch dimension). */
export interface GraphValue {
  name: string;
  shape: (number | "N")[];
}

export const attr = {
  int: (name: string, i: number): AttributeMsg => ({ name, type: AttributeType.INT, i }),
  float: (name: string, f: number): AttributeMsg => ({ name, type: AttributeType.FLOAT, f }),
  ints: (name: string, ints: number[]): AttributeMsg => ({ name, type: AttributeType.INTS, ints }),
};

/**
 * Where weights go instead of the protobuf (ONNX external data, for models past protobuf's 2 GiB):
 * an open file, and its name relative to the model's folder as the model records it.
 */
export interface ExternalData {
  fd: number;
  location: string;
}

/** Collects nodes and fp32 initialisers, keeping every name unique. */
export class GraphBuilder {
  readonly nodes: NodeMsg[] = [];
  readonly initializers: TensorMsg[] = [];
  /** Bytes of initialiser data so far (protobuf caps a whole message at 2 GiB). */
  dataBytes = 0;
  private readonly used = new Set<string>();

  /** With `external`, weight() streams each parameter into that file rather than into the graph. */
  constructor(
    readonly opset: number,
    private readonly external?: ExternalData,
  ) {}

  /** A name not used yet: `base`, else `base_1`, `base_2`… */
  unique(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }

  /** Adds a float32 initialiser (converting whatever dtype the tensor has) and returns its name. */
  weight(name: string, t: Tensor, dims: readonly number[] = t.shape): string {
    if (this.external) return this.externalWeight(name, t, dims, this.external);
    const f32 = T.scope(() => T.noGrad(() => t.detach().to("f32").contiguous().data())) as Float32Array;
    return this.floats(name, f32, dims);
  }

  /** The tensor's float32 bytes appended to the external file straight from its memory. */
  private externalWeight(name: string, t: Tensor, dims: readonly number[], ext: ExternalData): string {
    const unique = this.unique(name);
    const offset = this.dataBytes;
    T.scope(() =>
      T.noGrad(() => {
        for (const view of t.detach().to("cpu").to("f32").contiguous().byteViews())
          for (let done = 0; done < view.byteLength;) done += writeSync(ext.fd, view, done);
      }),
    );
    const length = t.numel * 4;
    this.dataBytes += length;
    this.initializers.push({
      name: unique,
      dims: [...dims],
      dataType: DataType.FLOAT,
      dataLocation: DataLocation.EXTERNAL,
      externalData: [
        { key: "location", value: ext.location },
        { key: "offset", value: String(offset) },
        { key: "length", value: String(length) },
      ],
    });
    return unique;
  }

  floats(name: string, values: Float32Array, dims: readonly number[]): string {
    const unique = this.unique(name);
    const rawData = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    this.initializers.push({ name: unique, dims: [...dims], dataType: DataType.FLOAT, rawData });
    this.dataBytes += rawData.byteLength;
    return unique;
  }

  node(opType: string, name: string, inputs: string[], attributes: AttributeMsg[] = []): string {
    const nodeName = this.unique(name);
    this.nodes.push({ name: nodeName, opType, input: inputs, output: [nodeName], attribute: attributes });
    return nodeName;
  }
}

/** Lowers `model` (in eval mode) applied to `input`; returns the output value. */
export function lowerModel(model: AnyModule, input: GraphValue, g: GraphBuilder): GraphValue {
  if (model.training) throw new Error("export: put the model in eval mode first (model.eval())");
  const paths = new Map<AnyModule, string>();
  for (const [p, m] of model.namedModules()) paths.set(m, p);
  const pathOf = (m: AnyModule): string => paths.get(m) ?? "?";
  const join = (m: AnyModule, leaf: string): string => (pathOf(m) ? `${pathOf(m)}.${leaf}` : leaf);

  const chain = (x: GraphValue, layers: readonly AnyModule[]): GraphValue =>
    layers.reduce((cur, l) => lower(l, cur), x);

  const lower = (m: AnyModule, x: GraphValue): GraphValue => {
    const path = pathOf(m);
    if (m instanceof Conv2d) return conv(g, m, path, x);
    if (m instanceof BatchNorm2d || m instanceof BatchNorm1d) return batchNorm(g, m, path, x);
    if (m instanceof PReLU) return prelu(g, m, path, x);
    if (m instanceof Linear) return gemm(g, m, path, x);
    if (m instanceof Flatten) return flatten(g, path, x, m.startDim, m.endDim);
    if (m instanceof ReLU) return { name: g.node("Relu", path, [x.name]), shape: x.shape };
    if (m instanceof Dropout || m instanceof Identity) return x;
    if (m instanceof Sequential) return chain(x, m.layers);
    if (m instanceof IBasicBlock) {
      const out = chain(x, [m.bn1, m.conv1, m.bn2, m.prelu, m.conv2, m.bn3]);
      const shortcut = m.downsample ? lower(m.downsample, x) : x;
      return add(g, join(m, "add"), out, shortcut);
    }
    if (m instanceof IResNet) {
      let h = chain(x, [m.conv1, m.bn1, m.prelu, ...m.stages, m.bn2]);
      h = flatten(g, join(m, "flatten"), h, 1, -1);
      return chain(h, [m.dropout, m.fc, m.features]);
    }
    if (m instanceof MobileFaceNet) return chain(x, [m.layers, m.convSep, m.features]);
    const wrapped = asWrappedSequential(m);
    if (wrapped) {
      const y = lower(wrapped.layers, x);
      return wrapped.residual ? add(g, join(m, "add"), y, x) : y;
    }
    throw new Error(`export: no ONNX lowering for ${m.constructor.name} at '${path || "<root>"}'`);
  };
  return lower(model, input);
}

/**
 * MobileFaceNet's building blocks (arcface_torch's ConvBlock, LinearBlock, DepthWise, Residual,
 * GDC) are one private class: a module whose only child is a Sequential named `layers`, run as is
 * or with the input added (`residual`). Recognised by that shape.
 */
function asWrappedSequential(m: AnyModule): { layers: Sequential; residual: boolean } | undefined {
  const children = m.namedChildren();
  const only = children.length === 1 ? children[0] : undefined;
  const residual = (m as unknown as { residual?: unknown }).residual;
  if (only && only[0] === "layers" && only[1] instanceof Sequential && typeof residual === "boolean")
    return { layers: only[1], residual };
  return undefined;
}

function add(g: GraphBuilder, name: string, a: GraphValue, b: GraphValue): GraphValue {
  if (a.shape.join() !== b.shape.join())
    throw new Error(`export: '${name}' adds [${a.shape.join(", ")}] and [${b.shape.join(", ")}]`);
  return { name: g.node("Add", name, [a.name, b.name]), shape: a.shape };
}

function conv(g: GraphBuilder, m: Conv2d, path: string, x: GraphValue): GraphValue {
  const o = m.options;
  const [stride, pad, dil, groups] = [o.stride ?? 1, o.padding ?? 0, o.dilation ?? 1, o.groups ?? 1];
  const k = m.kernelSize;
  if (x.shape.length !== 4 || x.shape[1] !== m.inChannels)
    throw new Error(`export: '${path}' expects [N, ${m.inChannels}, H, W], gets [${x.shape.join(", ")}]`);
  const inputs = [x.name, g.weight(`${path}.weight`, m.weight)];
  if (m.bias) inputs.push(g.weight(`${path}.bias`, m.bias));
  const size = (s: number | "N"): number =>
    Math.floor(((s as number) + 2 * pad - dil * (k - 1) - 1) / stride) + 1;
  const name = g.node("Conv", path, inputs, [
    attr.ints("kernel_shape", [k, k]),
    attr.ints("strides", [stride, stride]),
    attr.ints("pads", [pad, pad, pad, pad]),
    attr.ints("dilations", [dil, dil]),
    attr.int("group", groups),
  ]);
  return { name, shape: [x.shape[0]!, m.outChannels, size(x.shape[2]!), size(x.shape[3]!)] };
}

function batchNorm(g: GraphBuilder, m: BatchNorm1d | BatchNorm2d, path: string, x: GraphValue): GraphValue {
  if (!m.runningMean || !m.runningVar)
    throw new Error(`export: '${path}' has no running statistics (eval mode needs them)`);
  const c = m.numFeatures;
  const ones = (): string => g.floats(`${path}.weight`, new Float32Array(c).fill(1), [c]);
  const zeros = (): string => g.floats(`${path}.bias`, new Float32Array(c), [c]);
  const inputs = [
    x.name,
    m.weight ? g.weight(`${path}.weight`, m.weight) : ones(),
    m.bias ? g.weight(`${path}.bias`, m.bias) : zeros(),
    g.weight(`${path}.running_mean`, m.runningMean),
    g.weight(`${path}.running_var`, m.runningVar),
  ];
  return { name: g.node("BatchNormalization", path, inputs, [attr.float("epsilon", m.eps)]), shape: x.shape };
}

function prelu(g: GraphBuilder, m: PReLU, path: string, x: GraphValue): GraphValue {
  // ONNX broadcasts the slope against the trailing dimensions, PyTorch applies it on dim 1:
  // a per-channel slope on [N, C, H, W] must be stored as [C, 1, 1].
  const n = m.weight.numel;
  const dims = n === 1 ? [1] : [n, ...x.shape.slice(2).map(() => 1)];
  if (n !== 1 && x.shape[1] !== n)
    throw new Error(`export: '${path}' has ${n} slopes for ${x.shape[1]} channels`);
  return {
    name: g.node("PRelu", path, [x.name, g.weight(`${path}.weight`, m.weight, dims)]),
    shape: x.shape,
  };
}

function gemm(g: GraphBuilder, m: Linear, path: string, x: GraphValue): GraphValue {
  if (x.shape.length !== 2 || x.shape[1] !== m.inFeatures)
    throw new Error(`export: '${path}' expects [N, ${m.inFeatures}], gets [${x.shape.join(", ")}]`);
  const inputs = [x.name, g.weight(`${path}.weight`, m.weight)];
  // Gemm's C became optional in opset 11; before that a missing bias is written as zeros.
  if (m.bias) inputs.push(g.weight(`${path}.bias`, m.bias));
  else if (g.opset < 11)
    inputs.push(g.floats(`${path}.bias`, new Float32Array(m.outFeatures), [m.outFeatures]));
  return { name: g.node("Gemm", path, inputs, [attr.int("transB", 1)]), shape: [x.shape[0]!, m.outFeatures] };
}

function flatten(g: GraphBuilder, path: string, x: GraphValue, start: number, end: number): GraphValue {
  const rank = x.shape.length;
  const s = start < 0 ? start + rank : start;
  const e = end < 0 ? end + rank : end;
  if (e !== rank - 1)
    throw new Error(
      `export: '${path}' flattens dims ${start}..${end}; only flattening to the end is supported`,
    );
  if (s !== 1) throw new Error(`export: '${path}' flattens from dim ${start}; only dim 1 keeps the batch`);
  // ONNX's Flatten(axis=1) and torch's flatten(1) both keep row-major order: [N, C·H·W].
  const rest = x.shape.slice(1).reduce<number>((a, d) => a * (d as number), 1);
  return { name: g.node("Flatten", path, [x.name], [attr.int("axis", s)]), shape: [x.shape[0]!, rest] };
}
