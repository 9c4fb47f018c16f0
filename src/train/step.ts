// One optimisation step of the recipe, shared by the trainer, the equivalence tests and the
// benchmarks. It follows the picture in DESIGN.md:
//   for each of M micro-batches of this rank's batch:
//     forward   the backbone (under autocast);
//     head      all-gathers, distributed softmax, its own backward, gradients × 1/M;
//     loss      the CE (each further term, e.g. distillation, adds to `loss` and to `parts`);
//     backward  loss.backward (× loss scale), then the checkpointed segments replayed;
//   sync      once per step, by the GradientSync (src/train/sync.ts: data parallel, ZeRO-1, ZeRO-2);
//   step      loss scaling (unscale; skip on every rank if any gradient anywhere is not finite),
//             clip, the backbone's and the head's optimizers.
// Every switch is independent: micro-batches, checkpointing, AMP and ZeRO compose freely.
import * as T from "../torch/index.ts";
import { type Tensor } from "../torch/index.ts";
import { type ProcessGroup } from "../distributed/index.ts";
import { type PartialFC } from "../head/index.ts";
import { type CheckpointPolicy } from "../models/index.ts";
import { type DistillTerm } from "./distill/term.ts";
import {
  type AmpMode,
  DEFAULT_LOSS_SCALE,
  type LossScaleOptions,
  LossScaler,
  Precision,
} from "./precision.ts";
import {
  type AnyOptimizer,
  type GradientSync,
  type ParamGroups,
  type Tape,
  createGradientSync,
} from "./sync.ts";

export type { AnyOptimizer, ParamGroups } from "./sync.ts";

/** What the step needs of a backbone (IResNet and MobileFaceNet satisfy it). */
export interface StepModel {
  forward(x: Tensor): Tensor;
  /** Checkpointed segments waiting for their backward (an iResNet's CheckpointTape). */
  readonly tape?: Tape;
  /** The backbone's checkpoint policy (undefined: none). */
  checkpoint?: CheckpointPolicy;
}

export interface StepOptions {
  /** Micro-batches per step (gradient accumulation); must divide the per-rank batch. */
  microBatches?: number;
  amp?: AmpMode;
  /** Precision of the head's logits and softmax under AMP (default fp32). */
  headPrecision?: "fp32" | "amp";
  /** Where the step runs, e.g. "cuda:0" (default: where the backbone's parameters are). */
  device?: string;
  /** Dynamic loss scaling: default on with fp16 only; false turns it off. */
  lossScale?: LossScaleOptions | boolean;
  zero?: 0 | 1 | 2;
  /** Backbone gradient norm clip; 0 = off. */
  clipNorm?: number;
  compress?: AmpMode;
  bucketCapMB?: number;
  /** Let c10d's Reducer overlap the all-reduce with backward where possible (default true). */
  overlap?: boolean;
  /** Feature distillation: CE + λ·‖t/‖t‖ − s/‖s‖‖² (teacher embeddings handed to run()). */
  distill?: DistillTerm;
  /** Test hook, called after each micro-batch's backward (e.g. to inject a non-finite gradient). */
  afterBackward?: (microBatch: number) => void;
}

export interface StepOutcome {
  /** Mean total loss of the global batch (the same on every rank). */
  loss: number;
  /** The total's terms, each a global-batch mean: `ce`, and any term the step adds. */
  parts: Record<string, number>;
  /** True when loss scaling found non-finite gradients and no parameter changed. */
  skipped: boolean;
  /** The loss scale this step ran with (undefined without loss scaling). */
  lossScale?: number;
}

export class TrainStep {
  /** The backbone's gradient sync, which owns its optimizer (schedule `sync.optimizer`). */
  readonly sync: GradientSync;
  readonly scaler: LossScaler | undefined;
  readonly precision: Precision;
  readonly microBatches: number;

  constructor(
    readonly group: ProcessGroup,
    readonly model: StepModel,
    backboneGroups: ParamGroups,
    readonly head: PartialFC,
    readonly headOpt: AnyOptimizer,
    makeOptimizer: (groups: ParamGroups) => AnyOptimizer,
    private readonly o: StepOptions = {},
  ) {
    this.microBatches = o.microBatches ?? 1;
    if (!Number.isInteger(this.microBatches) || this.microBatches < 1)
      throw new Error(`train.microBatches must be a positive integer, got ${o.microBatches}`);
    const device = o.device ?? backboneGroups[0]?.params[0]?.device ?? "cpu";
    this.precision = new Precision(o.amp ?? "none", T.deviceKind(device), o.headPrecision ?? "fp32");
    const ls = o.lossScale ?? o.amp === "fp16";
    this.scaler = ls === false ? undefined : new LossScaler(ls === true ? DEFAULT_LOSS_SCALE : ls);
    // The Reducer all-reduces from autograd hooks during backward; checkpoint replays run after
    // loss.backward() returns, so checkpointing takes the post-backward path.
    const checkpointed = model.tape !== undefined && model.checkpoint !== undefined;
    this.sync = createGradientSync(group, backboneGroups, makeOptimizer, {
      zero: o.zero ?? 0,
      compress: o.compress,
      bucketCapMB: o.bucketCapMB,
      overlap: (o.overlap ?? true) && !checkpointed,
    });
  }

  /** The data-parallel all-reduce and, with ZeRO, the sharded optimizer (tests observe them). */
  get dp(): GradientSync["dp"] {
    return this.sync.dp;
  }
  get zero(): GradientSync["zero"] {
    return this.sync.zero;
  }

  /** Copies rank 0's backbone (parameters and `extra`, e.g. BN buffers) to every rank. */
  broadcastFromRoot(extra: readonly Tensor[] = []): void {
    this.sync.broadcastFromRoot(extra);
  }

  /**
   * One step on this rank's batch x [B, ...], labels y [B]; with distillation, `teacher` [B, Dt]
   * holds the teacher's embeddings of exactly these images.
   */
  run(x: Tensor, y: Tensor, teacher?: Tensor): StepOutcome {
    const distill = this.o.distill;
    if ((distill === undefined) !== (teacher === undefined))
      throw new Error(
        `TrainStep.run: ${distill ? "distillation needs the teacher's embeddings" : "no distillation configured"}`,
      );
    const M = this.microBatches;
    const B = x.size(0);
    if (B % M !== 0) throw new Error(`train.microBatches: ${M} does not divide the per-rank batch of ${B}`);
    const b = B / M;
    return T.scope(() => {
      const lossScale = this.scaler?.scale;
      this.#zeroGrad();
      const parts: Record<string, number> = {};
      for (let i = 0; i < M; i++) {
        T.scope(() => {
          const xi = M === 1 ? x : x.narrow(0, i * b, b);
          const yi = M === 1 ? y : y.narrow(0, i * b, b);
          const emb = this.precision.backbone(() => this.model.forward(xi));
          // Nothing can skip a step without loss scaling: a fused head may update in its pass.
          const stepWith = M === 1 && !this.scaler ? this.headOpt : undefined;
          const ce = this.precision.headForward(() =>
            this.head.forward(emb, yi, { gradScale: 1 / M, stepWith }),
          );
          // A further term joins `terms` and the sum. The head's CE carries its 1/M in its
          // gradient, not its value; distillation is this rank's mean, weighted λ/M here (the
          // data-parallel averaging makes it the global batch's mean).
          const terms: Record<string, Tensor> = { ce };
          let loss = ce;
          if (distill) {
            terms.distill = this.precision.headForward(() => distill.loss(emb, teacher!.narrow(0, i * b, b)));
            loss = ce.add(terms.distill, distill.lambda / M);
          }
          this.#backward(loss, i === M - 1, lossScale);
          this.o.afterBackward?.(i);
          for (const [k, t] of Object.entries(terms)) parts[k] = (parts[k] ?? 0) + t.item() / M;
        });
      }
      // The CE is already the global batch's; this rank's distillation mean is averaged over ranks.
      if (distill) parts.distill = this.#rankMean(parts.distill!);
      const total = (parts.ce ?? 0) + (distill ? distill.lambda * parts.distill! : 0);
      this.sync.afterBackward();
      const finite = this.#unscale();
      if (finite) {
        const clip = this.o.clipNorm ?? 0;
        if (clip > 0) this.sync.clipGradNorm(clip);
        this.sync.step();
        this.head.step(this.headOpt);
      }
      this.#zeroGrad();
      return { loss: total, parts, skipped: !finite, lossScale };
    });
  }

  /** The mean over ranks of a per-rank figure (for the log: one scalar all-reduce). */
  #rankMean(v: number): number {
    if (this.group.worldSize === 1) return v;
    return T.scope(() => {
      const t = T.scalarTensor(v, { dtype: "f64", device: this.head.weight.device });
      this.group.allReduce([t]).wait();
      return t.item() / this.group.worldSize;
    });
  }

  /** loss.backward (× the loss scale), then the checkpoint replays; `last` syncs the gradients. */
  #backward(loss: Tensor, last: boolean, scale: number | undefined): void {
    this.sync.beforeBackward(last);
    try {
      loss.backward(scale === undefined ? undefined : T.scalarTensor(scale, { device: loss.device }));
    } catch (e) {
      this.model.tape?.clear();
      throw e;
    }
    const tape = this.model.tape;
    if (tape) this.sync.replay(tape, last, (f) => this.precision.backbone(f));
  }

  /** With loss scaling: unscales, and whether every gradient on every rank is finite. */
  #unscale(): boolean {
    if (!this.scaler) return true;
    const finite = this.scaler.unscaleAndCheck(this.group, this.sync.grads(), this.head.gradientsToCheck());
    this.scaler.update(finite);
    return finite;
  }

  #zeroGrad(): void {
    this.sync.zeroGrad();
    this.head.zeroGrad();
  }

  dispose(): void {
    this.sync.dispose();
  }
}
