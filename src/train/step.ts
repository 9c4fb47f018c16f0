// One optimisation step of the recipe, shared by the trainer, the equivalence tests and the
// benchmarks. Top to bottom:
//   for each of M micro-batches of this rank's batch:
//     backbone forward (autocast) → head (fp32: all-gathers, distributed softmax, its own
//     backward, gradients × 1/M) → loss.backward (× loss scale) → checkpointed segments replayed;
//   gradient sync once per step: DataParallel's all-reduce (overlapped with the last micro-batch's
//     backward when nothing else needs the gradients first), or ZeRO-2's reduce-scatter;
//   loss scaling: unscale, and skip the step on every rank if any gradient anywhere is not finite;
//   clip, then the optimizer steps (ZeRO: on this rank's pieces, then all-gather).
// Every switch is independent: micro-batches, checkpointing, AMP and ZeRO compose freely.
import * as T from "../torch/index.ts";
import { type Tensor } from "../torch/index.ts";
import { DataParallel, type ProcessGroup } from "../distributed/index.ts";
import { type PartialFC } from "../head/index.ts";
import { type Optimizer, ZeroOptimizer, clipGradNorm } from "../optim/index.ts";
import { type CheckpointPolicy } from "../models/index.ts";
import {
  type AmpMode,
  DEFAULT_LOSS_SCALE,
  type LossScaleOptions,
  LossScaler,
  Precision,
} from "./precision.ts";

export type AnyOptimizer = Optimizer<{ lr: number } & Record<string, number | boolean>>;
export type ParamGroups = {
  params: Tensor[];
  options?: Partial<{ lr: number } & Record<string, number | boolean>>;
}[];

/** What the step needs of a backbone (IResNet and MobileFaceNet satisfy it). */
export interface StepModel {
  forward(x: Tensor): Tensor;
  /** Checkpointed segments waiting for their backward (an iResNet's CheckpointTape). */
  readonly tape?: {
    backward(onSegmentDone?: (index: number, params: readonly Tensor[] | undefined) => void): void;
    segmentParams(): (readonly Tensor[] | undefined)[];
    clear(): void;
  };
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
  /** Test hook, called after each micro-batch's backward (e.g. to inject a non-finite gradient). */
  afterBackward?: (microBatch: number) => void;
}

export interface StepOutcome {
  /** Mean loss of the global batch (the same on every rank). */
  loss: number;
  /** True when loss scaling found non-finite gradients and no parameter changed. */
  skipped: boolean;
  /** The loss scale this step ran with (undefined without loss scaling). */
  lossScale?: number;
}

export class TrainStep {
  readonly dp: DataParallel;
  readonly zero: ZeroOptimizer | undefined;
  /** The backbone's optimizer: with ZeRO, the inner one over this rank's pieces (schedule it). */
  readonly backboneOpt: AnyOptimizer;
  readonly scaler: LossScaler | undefined;
  readonly precision: Precision;
  readonly microBatches: number;
  readonly #params: Tensor[];
  readonly #paramIndex: Map<Tensor, number>;

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
    const zero = o.zero ?? 0;
    this.#params = backboneGroups.flatMap((g) => g.params).filter((p) => p.requiresGrad);
    this.#paramIndex = new Map(this.#params.map((p, i) => [p, i]));
    const device = o.device ?? this.#params[0]?.device ?? "cpu";
    this.precision = new Precision(o.amp ?? "none", T.deviceKind(device), o.headPrecision ?? "fp32");
    const ls = o.lossScale ?? o.amp === "fp16";
    this.scaler = ls === false ? undefined : new LossScaler(ls === true ? DEFAULT_LOSS_SCALE : ls);
    if (zero === 0) {
      this.zero = undefined;
      this.backboneOpt = makeOptimizer(backboneGroups);
    } else {
      this.zero = new ZeroOptimizer(group, backboneGroups, makeOptimizer, {
        stage: zero,
        bucketCapMB: o.bucketCapMB,
        compress: o.compress,
      });
      this.backboneOpt = this.zero.inner;
    }
    // After ZeRO, which moves the parameters into its flat buffers. The Reducer all-reduces from
    // autograd hooks during backward; checkpoint replays run after loss.backward() returns, and
    // ZeRO-2 reduce-scatters instead, so both take the post-backward path.
    const checkpointed = model.tape !== undefined && model.checkpoint !== undefined;
    this.dp = new DataParallel(group, this.#params, {
      compress: o.compress,
      bucketCapMB: o.bucketCapMB,
      overlap: (o.overlap ?? true) && !checkpointed && zero !== 2,
    });
  }

  /** Copies rank 0's backbone (parameters and `extra`, e.g. BN buffers) to every rank. */
  broadcastFromRoot(extra: readonly Tensor[] = []): void {
    this.dp.broadcastFromRoot(extra);
  }

  /** One step on this rank's batch x [B, ...], labels y [B]. */
  run(x: Tensor, y: Tensor): StepOutcome {
    const M = this.microBatches;
    const B = x.size(0);
    if (B % M !== 0) throw new Error(`train.microBatches: ${M} does not divide the per-rank batch of ${B}`);
    const b = B / M;
    return T.scope(() => {
      this.#zeroGrad();
      const scale = this.scaler?.scale;
      let loss = 0;
      for (let i = 0; i < M; i++) {
        T.scope(() => {
          const xi = M === 1 ? x : x.narrow(0, i * b, b);
          const yi = M === 1 ? y : y.narrow(0, i * b, b);
          const emb = this.precision.backbone(() => this.model.forward(xi));
          const l = this.precision.headForward(() => this.head.forward(emb, yi, { gradScale: 1 / M }));
          // Gradients are synchronised once, by the last micro-batch's backward.
          if (i === M - 1 && this.zero?.stage !== 2) this.dp.beforeBackward();
          try {
            l.backward(scale === undefined ? undefined : T.scalarTensor(scale, { device: l.device }));
          } catch (e) {
            this.model.tape?.clear();
            throw e;
          }
          const tape = this.model.tape;
          if (i === M - 1 && this.zero?.stage === 2 && tape) this.#backwardStreamingZero2(tape);
          else if (tape) this.precision.backbone(() => tape.backward());
          this.o.afterBackward?.(i);
          loss += l.item() / M;
        });
      }
      if (this.zero?.stage !== 2) this.dp.afterBackward();
      this.zero?.reduceGradients();

      let finite = true;
      if (this.scaler) {
        const headGrad = this.head.weight.grad;
        finite = this.scaler.unscaleAndCheck(this.group, this.#backboneGrads(), headGrad ? [headGrad] : []);
        this.scaler.update(finite);
      }
      if (finite) {
        const clip = this.o.clipNorm ?? 0;
        if (clip > 0) {
          if (this.zero) this.zero.clipGradNorm(clip);
          else clipGradNorm(this.#params, clip);
        }
        if (this.zero) this.zero.step();
        else this.backboneOpt.step();
        this.headOpt.step();
      }
      this.#zeroGrad();
      return { loss, skipped: !finite, lossScale: scale };
    });
  }

  /**
   * ZeRO-2 with checkpointing: the replays run last segment first, and the backbone's parameters
   * are in forward order, so after each replay every parameter from that segment's first one on
   * has its final gradient: those buckets are reduce-scattered and their full gradients freed
   * while the rest of the backward pass runs (ZeroOptimizer checks the order assumption).
   */
  #backwardStreamingZero2(tape: NonNullable<StepModel["tape"]>): void {
    const zero = this.zero!;
    const index = this.#paramIndex;
    const segments = tape.segmentParams();
    if (segments.some((s) => s === undefined || s.some((p) => !index.has(p)))) {
      this.precision.backbone(() => tape.backward());
      return;
    }
    const firstOf = (ps: readonly Tensor[]): number => Math.min(...ps.map((p) => index.get(p)!));
    const lastOf = (ps: readonly Tensor[]): number => Math.max(...ps.map((p) => index.get(p)!));
    let frontier = segments.length ? Math.max(...segments.map((s) => lastOf(s!))) + 1 : 0;
    zero.reduceReady((p) => index.get(p)! >= frontier);
    this.precision.backbone(() =>
      tape.backward((_, params) => {
        frontier = Math.min(frontier, firstOf(params!));
        zero.reduceReady((p) => index.get(p)! >= frontier);
      }),
    );
  }

  #backboneGrads(): Tensor[] {
    if (this.zero) return this.zero.shardGrads();
    return this.#params.map((p) => p.grad).filter((g): g is Tensor => g !== undefined);
  }

  #zeroGrad(): void {
    if (this.zero) this.zero.zeroGrad();
    else this.backboneOpt.zeroGrad();
    this.headOpt.zeroGrad();
  }

  dispose(): void {
    this.dp.destroy();
    this.zero?.dispose();
  }
}
