// The layers face backbones are built from. Defaults and initialisation follow torch.nn so a
// model defined here behaves like its PyTorch twin.
import * as T from "../torch/index.ts";
import { type Tensor } from "../torch/index.ts";
import { type Layer, Module } from "./module.ts";
import { kaimingUniform_, uniform_, fans } from "./init.ts";
import { isReplaying } from "./checkpoint.ts";

function defaultInit(weight: Tensor, bias: Tensor | undefined): void {
  // torch.nn's reset_parameters for Linear and ConvNd.
  kaimingUniform_(weight, { a: Math.sqrt(5) });
  if (bias) {
    const b = 1 / Math.sqrt(fans(weight).fanIn);
    uniform_(bias, -b, b);
  }
}

export interface Conv2dOptions {
  stride?: number;
  padding?: number;
  dilation?: number;
  groups?: number;
  bias?: boolean;
}

export class Conv2d extends Module {
  readonly weight: Tensor;
  bias: Tensor | undefined;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    readonly options: Conv2dOptions = {},
  ) {
    super();
    const groups = options.groups ?? 1;
    if (inChannels % groups !== 0 || outChannels % groups !== 0) {
      throw new Error(`Conv2d: channels ${inChannels}->${outChannels} are not divisible by groups=${groups}`);
    }
    this.weight = this.registerParameter(
      "weight",
      T.empty([outChannels, inChannels / groups, kernelSize, kernelSize]),
    );
    this.bias = options.bias === false ? undefined : this.registerParameter("bias", T.empty([outChannels]));
    defaultInit(this.weight, this.bias);
  }
  /** Gives the convolution a bias (BatchNorm folding), or replaces the one it has. */
  setBias(b: Tensor): void {
    if (this.bias) this.replaceParameter("bias", b);
    else this.registerParameter("bias", b);
    this.bias = b;
  }
  forward(x: Tensor): Tensor {
    const o = this.options;
    return T.conv2d(x, this.weight, this.bias, {
      stride: o.stride ?? 1,
      padding: o.padding ?? 0,
      dilation: o.dilation ?? 1,
      groups: o.groups ?? 1,
    });
  }
}

export class Linear extends Module {
  readonly weight: Tensor;
  bias: Tensor | undefined;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: { bias?: boolean } = {},
  ) {
    super();
    this.weight = this.registerParameter("weight", T.empty([outFeatures, inFeatures]));
    this.bias = opts.bias === false ? undefined : this.registerParameter("bias", T.empty([outFeatures]));
    defaultInit(this.weight, this.bias);
  }
  /** Gives the layer a bias (BatchNorm folding), or replaces the one it has. */
  setBias(b: Tensor): void {
    if (this.bias) this.replaceParameter("bias", b);
    else this.registerParameter("bias", b);
    this.bias = b;
  }
  forward(x: Tensor): Tensor {
    return T.linear(x, this.weight, this.bias);
  }
}

export interface BatchNormOptions {
  eps?: number;
  momentum?: number;
  affine?: boolean;
  trackRunningStats?: boolean;
}

/** BatchNorm over dim 1; BatchNorm1d and BatchNorm2d differ only in the input rank they accept. */
abstract class BatchNorm extends Module {
  readonly weight: Tensor | undefined;
  readonly bias: Tensor | undefined;
  readonly runningMean: Tensor | undefined;
  readonly runningVar: Tensor | undefined;
  readonly numBatchesTracked: Tensor | undefined;
  readonly eps: number;
  readonly momentum: number;
  protected abstract readonly ranks: readonly number[];

  constructor(
    readonly numFeatures: number,
    o: BatchNormOptions = {},
  ) {
    super();
    this.eps = o.eps ?? 1e-5;
    this.momentum = o.momentum ?? 0.1;
    if (o.affine !== false) {
      this.weight = this.registerParameter("weight", T.ones([numFeatures]));
      this.bias = this.registerParameter("bias", T.zeros([numFeatures]));
    }
    if (o.trackRunningStats !== false) {
      this.runningMean = this.registerBuffer("running_mean", T.zeros([numFeatures]));
      this.runningVar = this.registerBuffer("running_var", T.ones([numFeatures]));
      this.numBatchesTracked = this.registerBuffer("num_batches_tracked", T.zeros([], { dtype: "i64" }));
    }
  }
  forward(x: Tensor): Tensor {
    if (!this.ranks.includes(x.ndim)) {
      throw new Error(
        `${this.constructor.name}: expected ${this.ranks.join(" or ")}-D input, got [${x.shape.join(", ")}]`,
      );
    }
    const useBatchStats = this.training || this.runningMean === undefined;
    // A checkpointed segment replayed for its gradients already updated the statistics in its
    // first (gradient-free) run; updating them again would count the batch twice.
    const updateStats = this.training && !isReplaying();
    if (updateStats && this.numBatchesTracked) {
      const n = this.numBatchesTracked;
      T.noGrad(() => n.add_(1));
    }
    const stats = updateStats || !this.training;
    return T.batchNorm(x, {
      weight: this.weight,
      bias: this.bias,
      runningMean: stats ? this.runningMean : undefined,
      runningVar: stats ? this.runningVar : undefined,
      training: useBatchStats,
      momentum: this.momentum,
      eps: this.eps,
    });
  }
}

export class BatchNorm1d extends BatchNorm {
  protected readonly ranks = [2, 3] as const;
}
export class BatchNorm2d extends BatchNorm {
  protected readonly ranks = [4] as const;
}

export class PReLU extends Module {
  readonly weight: Tensor;
  constructor(numParameters = 1, init = 0.25) {
    super();
    this.weight = this.registerParameter("weight", T.full([numParameters], init));
  }
  forward(x: Tensor): Tensor {
    return T.prelu(x, this.weight);
  }
}

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return x.relu();
  }
}

export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
    if (p < 0 || p > 1) throw new RangeError(`Dropout: p must be in [0, 1], got ${p}`);
  }
  forward(x: Tensor): Tensor {
    return T.dropout(x, this.p, this.training);
  }
}

export class Flatten extends Module {
  constructor(
    readonly startDim = 1,
    readonly endDim = -1,
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return x.flatten(this.startDim, this.endDim);
  }
}

export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x.alias();
  }
}

/** Runs layers in order; children are named "0", "1", … as in torch.nn.Sequential. */
export class Sequential extends Module {
  readonly layers: Layer[];
  constructor(...layers: Layer[]) {
    super();
    this.layers = layers;
    layers.forEach((l, i) => this.registerModule(String(i), l));
  }
  forward(x: Tensor): Tensor {
    return chain(x, this.layers);
  }
}

/** A step of `chain`: a layer, or a function of the running tensor (a reshape, a checkpointed run). */
export type ChainStep = Layer | ((x: Tensor) => Tensor);

/**
 * Runs the steps in order, dropping each intermediate handle as soon as the next exists (`x`
 * stays the caller's). Under autograd the graph keeps what backward needs; without it (eval,
 * embedding) only one activation is alive at a time, where a scope would hold all of them.
 */
export function chain(x: Tensor, steps: readonly ChainStep[]): Tensor {
  let cur = x;
  for (const s of steps) {
    const next = typeof s === "function" ? s(cur) : s.forward(cur);
    if (cur !== x) cur.dispose();
    cur = next;
  }
  return cur;
}
