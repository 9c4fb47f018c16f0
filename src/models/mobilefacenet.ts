// MobileFaceNet as arcface_torch defines it (backbones/mobilefacenet.py: `mbf` = blocks
// (1,4,6,2), scale 2; `mbf_large` = (2,8,12,4), scale 4), with the same module names. Every
// arcface_torch wrapper (ConvBlock, LinearBlock, DepthWise, Residual, GDC) is a module holding a
// Sequential named `layers`, so one `Wrapped` class gives all of them their state-dict keys.
import { type Tensor } from "../torch/index.ts";
import {
  BatchNorm1d,
  BatchNorm2d,
  CheckpointTape,
  Conv2d,
  Flatten,
  type Layer,
  Linear,
  Module,
  PReLU,
  Sequential,
  chain,
  init,
} from "../nn/index.ts";
import { Cost, foldChild, scaled } from "./common.ts";
import { INPUT_SIZE } from "./iresnet.ts";

export interface MobileFaceNetOptions {
  /** Depthwise residual blocks in the four groups: (1,4,6,2) for mbf, (2,8,12,4) for mbf_large. */
  blocks: readonly [number, number, number, number];
  /** arcface_torch's channel scale (2 for mbf, 4 for mbf_large). */
  scale: number;
  /** An extra multiplier on every channel count (and group count), for tiny models. */
  width?: number;
  numFeatures?: number;
}

/** A Sequential named `layers`, optionally with the input added (arcface_torch's residual DepthWise). */
class Wrapped extends Module {
  readonly layers: Sequential;
  constructor(
    layers: Layer[],
    readonly residual = false,
  ) {
    super();
    this.layers = this.registerModule("layers", new Sequential(...layers));
  }
  forward(x: Tensor): Tensor {
    const y = this.layers.forward(x);
    return this.residual ? y.add_(x) : y;
  }
}

interface ConvSpec {
  cin: number;
  cout: number;
  k?: number;
  stride?: number;
  groups?: number;
}
function conv(s: ConvSpec): Conv2d {
  const k = s.k ?? 1;
  const padding = k === 3 ? 1 : 0;
  return new Conv2d(s.cin, s.cout, k, { stride: s.stride ?? 1, padding, groups: s.groups ?? 1, bias: false });
}
const convBlock = (s: ConvSpec): Wrapped =>
  new Wrapped([conv(s), new BatchNorm2d(s.cout), new PReLU(s.cout)]);
const linearBlock = (s: ConvSpec): Wrapped => new Wrapped([conv(s), new BatchNorm2d(s.cout)]);
/** 1×1 expand, k×k depthwise (stride), 1×1 project; `hidden` is arcface_torch's `groups`. */
const depthWise = (cin: number, cout: number, hidden: number, stride: number, residual: boolean): Wrapped =>
  new Wrapped(
    [
      convBlock({ cin, cout: hidden }),
      convBlock({ cin: hidden, cout: hidden, k: 3, stride, groups: hidden }),
      linearBlock({ cin: hidden, cout }),
    ],
    residual,
  );
const residual = (c: number, n: number, hidden: number): Wrapped =>
  new Wrapped(Array.from({ length: n }, () => depthWise(c, c, hidden, 1, true)));

/** The channel plan shared by the module and its cost. */
function plan(o: MobileFaceNetOptions): { c1: number; c2: number; g64: number; h: number[]; last: number } {
  const w = o.width ?? 1;
  return {
    c1: scaled(64 * o.scale, w),
    c2: scaled(128 * o.scale, w),
    g64: scaled(64, w),
    h: [128, 256, 512].map((c) => scaled(c, w)),
    last: scaled(512, w),
  };
}

export class MobileFaceNet extends Module {
  readonly layers: Sequential;
  readonly convSep: Wrapped;
  readonly features: Wrapped;
  /** Always empty (MobileFaceNet is small enough not to checkpoint); there so every backbone
   * is driven alike: `net.tape.backwardFrom(loss)`. */
  readonly tape = new CheckpointTape();

  constructor(readonly options: MobileFaceNetOptions) {
    super();
    const { c1, c2, g64, h, last } = plan(options);
    const [h128, h256, h512] = h as [number, number, number];
    const b = options.blocks;
    const f = options.numFeatures ?? 512;
    this.layers = this.registerModule(
      "layers",
      new Sequential(
        convBlock({ cin: 3, cout: c1, k: 3, stride: 2 }),
        b[0] === 1 ? convBlock({ cin: c1, cout: c1, k: 3, groups: g64 }) : residual(c1, b[0], h128),
        depthWise(c1, c1, h128, 2, false),
        residual(c1, b[1], h128),
        depthWise(c1, c2, h256, 2, false),
        residual(c2, b[2], h256),
        depthWise(c2, c2, h512, 2, false),
        residual(c2, b[3], h256),
      ),
    );
    this.convSep = this.registerModule("conv_sep", convBlock({ cin: c2, cout: last }));
    this.features = this.registerModule(
      "features",
      new Wrapped([
        new Wrapped([new Conv2d(last, last, 7, { groups: last, bias: false }), new BatchNorm2d(last)]),
        new Flatten(),
        new Linear(last, f, { bias: false }),
        new BatchNorm1d(f),
      ]),
    );
    // arcface_torch's initialisation: Kaiming normal (fan_out, relu) for convs and the linear.
    for (const [, m] of this.namedModules()) {
      if (m instanceof Conv2d || m instanceof Linear)
        init.kaimingNormal_(m.weight, { mode: "fan_out", nonlinearity: "relu" });
    }
  }

  forward(x: Tensor): Tensor {
    const s = x.shape;
    if (s.length !== 4 || s[1] !== 3 || s[2] !== INPUT_SIZE || s[3] !== INPUT_SIZE) {
      throw new Error(
        `MobileFaceNet: expected input [N, 3, ${INPUT_SIZE}, ${INPUT_SIZE}], got [${s.join(", ")}]`,
      );
    }
    return chain(x, [this.layers, this.convSep, this.features]);
  }

  /** Every BatchNorm here follows a conv or the linear layer, so all of them fold. */
  foldBatchNorm(): void {
    for (const [, m] of this.namedModules()) {
      if (!(m instanceof Sequential)) continue;
      m.layers.forEach((l, i) => {
        const next = m.layers[i + 1];
        if (
          (l instanceof Conv2d || l instanceof Linear) &&
          (next instanceof BatchNorm2d || next instanceof BatchNorm1d)
        )
          foldChild(m, String(i + 1), l);
      });
    }
  }
}

/** Parameters and multiply-accumulates at 112×112, without building the network. */
export function mobileFaceNetCost(o: MobileFaceNetOptions): Cost {
  const { c1, c2, g64, h, last } = plan(o);
  const [h128, h256, h512] = h as [number, number, number];
  const c = new Cost();
  const cb = (cin: number, cout: number, k: number, size: number, groups = 1): Cost =>
    c.conv(cin, cout, k, size, groups).bn(cout).prelu(cout);
  const dw = (cin: number, cout: number, hidden: number, inSize: number, stride: number): void => {
    cb(cin, hidden, 1, inSize);
    cb(hidden, hidden, 3, inSize / stride, hidden);
    c.conv(hidden, cout, 1, inSize / stride).bn(cout);
  };
  const res = (ch: number, n: number, hidden: number, size: number): void => {
    for (let i = 0; i < n; i++) dw(ch, ch, hidden, size, 1);
  };
  const b = o.blocks;
  const f = o.numFeatures ?? 512;
  cb(3, c1, 3, 56);
  if (b[0] === 1) cb(c1, c1, 3, 56, g64);
  else res(c1, b[0], h128, 56);
  dw(c1, c1, h128, 56, 2);
  res(c1, b[1], h128, 28);
  dw(c1, c2, h256, 28, 2);
  res(c2, b[2], h256, 14);
  dw(c2, c2, h512, 14, 2);
  res(c2, b[3], h256, 7);
  cb(c2, last, 1, 7);
  return c.conv(last, last, 7, 1, last).bn(last).linear(last, f, false).bn(f);
}
