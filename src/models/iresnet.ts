// The improved ResNet (iResNet) of ArcFace, defined once and parametrised by blocks per stage.
// Module and parameter names follow arcface_torch's backbones/iresnet.py exactly, so its
// backbone.pth loads here and our state dicts load there:
//   conv1 bn1 prelu layer{1..4}.{i}.(bn1 conv1 bn2 prelu conv2 bn3 downsample.0 downsample.1)
//   bn2 dropout fc features
import * as T from "../torch/index.ts";
import { type Tensor } from "../torch/index.ts";
import {
  BatchNorm1d,
  BatchNorm2d,
  type ChainStep,
  CheckpointTape,
  Conv2d,
  Dropout,
  type Layer,
  Linear,
  Module,
  PReLU,
  Sequential,
  chain,
  foldIntoFollowingLinear,
  init,
} from "../nn/index.ts";
import {
  type CheckpointPolicy,
  Cost,
  foldChild,
  replaceWithIdentity,
  scaled,
  segmentBlocks,
} from "./common.ts";

export type StageBlocks = readonly [number, number, number, number];

export interface IResNetOptions {
  /** IR blocks in each of the four stages. */
  blocks: StageBlocks;
  /** Channel multiplier: 1 gives arcface_torch's 64/128/256/512; 1/8 a tiny test model. */
  width?: number;
  /** Embedding size (512). */
  numFeatures?: number;
  /** Dropout before the FC layer (arcface_torch's default 0). */
  dropout?: number;
  checkpoint?: CheckpointPolicy;
}

/** The input every iResNet takes: aligned 112×112 RGB faces; the FC expects 7×7 maps. */
export const INPUT_SIZE = 112;
const STAGE_CHANNELS = [64, 128, 256, 512] as const;
const FINAL_SIZE = INPUT_SIZE / 16;

function stageChannels(width: number): number[] {
  return STAGE_CHANNELS.map((c) => scaled(c, width));
}

/** IR block: BN-conv3×3-BN-PReLU-conv3×3(stride)-BN plus the (projected) shortcut. */
export class IBasicBlock extends Module {
  bn1: Layer;
  readonly conv1: Conv2d;
  bn2: Layer;
  readonly prelu: PReLU;
  readonly conv2: Conv2d;
  bn3: Layer;
  readonly downsample: Sequential | undefined;

  constructor(inplanes: number, planes: number, stride: number) {
    super();
    this.bn1 = this.registerModule("bn1", new BatchNorm2d(inplanes, { eps: 1e-5 }));
    this.conv1 = this.registerModule("conv1", conv3x3(inplanes, planes, 1));
    this.bn2 = this.registerModule("bn2", new BatchNorm2d(planes, { eps: 1e-5 }));
    this.prelu = this.registerModule("prelu", new PReLU(planes));
    this.conv2 = this.registerModule("conv2", conv3x3(planes, planes, stride));
    this.bn3 = this.registerModule("bn3", new BatchNorm2d(planes, { eps: 1e-5 }));
    if (stride !== 1 || inplanes !== planes) {
      this.downsample = this.registerModule(
        "downsample",
        new Sequential(
          new Conv2d(inplanes, planes, 1, { stride, bias: false }),
          new BatchNorm2d(planes, { eps: 1e-5 }),
        ),
      );
    }
  }

  forward(x: Tensor): Tensor {
    const out = chain(x, [this.bn1, this.conv1, this.bn2, this.prelu, this.conv2, this.bn3]);
    const identity = this.downsample ? this.downsample.forward(x) : x;
    // In place, as arcface_torch's `out += identity`: saves one activation-sized allocation.
    out.add_(identity);
    if (identity !== x) identity.dispose();
    return out;
  }

  foldBatchNorm(): void {
    this.bn2 = foldChild(this, "bn2", this.conv1);
    this.bn3 = foldChild(this, "bn3", this.conv2);
    const ds = this.downsample;
    if (ds) foldChild(ds, "1", ds.layers[0] as Conv2d);
  }
}

export class IResNet extends Module {
  readonly conv1: Conv2d;
  bn1: Layer;
  readonly prelu: PReLU;
  readonly stages: Sequential[];
  bn2: Layer;
  readonly dropout: Dropout;
  readonly fc: Linear;
  features: Layer;
  /**
   * Where the checkpointed segments of training forwards wait for their backward pass: with a
   * `checkpoint` policy, finish each step with `tape.backwardFrom(loss)` (or `loss.backward()`
   * then `tape.backward()`), before any gradient all-reduce, in the forward's autocast context.
   */
  readonly tape = new CheckpointTape();
  /** Segments for activation checkpointing (training with gradients on); may change between steps. */
  checkpoint: CheckpointPolicy;

  constructor(readonly options: IResNetOptions) {
    super();
    const width = options.width ?? 1;
    const numFeatures = options.numFeatures ?? 512;
    if (options.blocks.length !== 4 || options.blocks.some((n) => !Number.isInteger(n) || n < 1)) {
      throw new Error(`IResNet: blocks must be four positive integers, got [${options.blocks.join(", ")}]`);
    }
    const ch = stageChannels(width);
    const c0 = ch[0]!;
    this.conv1 = this.registerModule("conv1", new Conv2d(3, c0, 3, { padding: 1, bias: false }));
    this.bn1 = this.registerModule("bn1", new BatchNorm2d(c0, { eps: 1e-5 }));
    this.prelu = this.registerModule("prelu", new PReLU(c0));
    let inplanes = c0;
    this.stages = options.blocks.map((n, s) => {
      const planes = ch[s]!;
      const blocks: IBasicBlock[] = [];
      for (let i = 0; i < n; i++)
        blocks.push(new IBasicBlock(i === 0 ? inplanes : planes, planes, i === 0 ? 2 : 1));
      inplanes = planes;
      return this.registerModule(`layer${s + 1}`, new Sequential(...blocks));
    });
    const last = ch[3]!;
    this.bn2 = this.registerModule("bn2", new BatchNorm2d(last, { eps: 1e-5 }));
    this.dropout = this.registerModule("dropout", new Dropout(options.dropout ?? 0));
    this.fc = this.registerModule("fc", new Linear(last * FINAL_SIZE * FINAL_SIZE, numFeatures));
    const features = this.registerModule("features", new BatchNorm1d(numFeatures, { eps: 1e-5 }));
    this.features = features;
    this.checkpoint = options.checkpoint;
    // arcface_torch's initialisation: conv weights N(0, 0.1), BN γ=1 β=0, and the embedding
    // BN's γ fixed at 1 (it is a parameter that never trains).
    for (const [, m] of this.namedModules()) if (m instanceof Conv2d) init.normal_(m.weight, 0, 0.1);
    features.weight!.requiresGrad = false;
  }

  forward(x: Tensor): Tensor {
    const s = x.shape;
    if (s.length !== 4 || s[1] !== 3 || s[2] !== INPUT_SIZE || s[3] !== INPUT_SIZE) {
      throw new Error(`IResNet: expected input [N, 3, ${INPUT_SIZE}, ${INPUT_SIZE}], got [${s.join(", ")}]`);
    }
    const segments =
      this.training && T.isGradEnabled()
        ? segmentBlocks(
            this.stages.map((st) => st.layers),
            this.checkpoint,
          )
        : [];
    const body: ChainStep[] =
      segments.length > 0
        ? segments.map(
            (seg) => (h: Tensor) =>
              this.tape.run(
                (y) => chain(y, seg),
                h,
                seg.flatMap((b) => b.parameters()),
              ),
          )
        : this.stages;
    return chain(x, [
      this.conv1,
      this.bn1,
      this.prelu,
      ...body,
      this.bn2,
      (h) => h.flatten(1),
      this.dropout,
      this.fc,
      this.features,
    ]);
  }

  /** Folds every BatchNorm that directly follows a conv or linear layer (or precedes the FC). */
  foldBatchNorm(): void {
    this.bn1 = foldChild(this, "bn1", this.conv1);
    for (const st of this.stages) for (const b of st.layers) (b as IBasicBlock).foldBatchNorm();
    const bn2 = this.bn2;
    if (bn2 instanceof BatchNorm2d) {
      // BN2d → flatten → (dropout, identity in eval) → FC: no padding, so it folds exactly.
      foldIntoFollowingLinear(bn2, this.fc);
      this.bn2 = replaceWithIdentity(this, "bn2");
    }
    this.features = foldChild(this, "features", this.fc);
  }
}

function conv3x3(cin: number, cout: number, stride: number): Conv2d {
  return new Conv2d(cin, cout, 3, { stride, padding: 1, bias: false });
}

/** One IR block's shape at 112×112: input channels and side, output channels and side. */
export interface BlockShape {
  stage: number;
  cin: number;
  planes: number;
  inSize: number;
  outSize: number;
  /** A projected shortcut (1×1 conv + BN): the first block of each stage. */
  downsample: boolean;
}

/** The IR blocks of an iResNet in forward order, with their shapes at 112×112. */
export function iresnetBlocks(o: IResNetOptions): BlockShape[] {
  const ch = stageChannels(o.width ?? 1);
  const out: BlockShape[] = [];
  let inplanes = ch[0]!;
  let size = INPUT_SIZE;
  o.blocks.forEach((n, s) => {
    const planes = ch[s]!;
    for (let i = 0; i < n; i++) {
      const first = i === 0;
      out.push({
        stage: s,
        cin: first ? inplanes : planes,
        planes,
        inSize: size,
        outSize: first ? size / 2 : size,
        downsample: first,
      });
      if (first) size /= 2;
    }
    inplanes = planes;
  });
  return out;
}

/** Parameters and multiply-accumulates of an iResNet at 112×112, without building it. */
export function iresnetCost(o: IResNetOptions): Cost {
  const ch = stageChannels(o.width ?? 1);
  const f = o.numFeatures ?? 512;
  const c = new Cost().conv(3, ch[0]!, 3, INPUT_SIZE).bn(ch[0]!).prelu(ch[0]!);
  for (const b of iresnetBlocks(o)) {
    c.bn(b.cin).conv(b.cin, b.planes, 3, b.inSize).bn(b.planes).prelu(b.planes);
    c.conv(b.planes, b.planes, 3, b.outSize).bn(b.planes);
    if (b.downsample) c.conv(b.cin, b.planes, 1, b.outSize).bn(b.planes);
  }
  return c
    .bn(ch[3]!)
    .linear(ch[3]! * FINAL_SIZE * FINAL_SIZE, f, true)
    .bn(f);
}
