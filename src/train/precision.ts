// Mixed precision for the step: where autocast applies (the backbone, and its checkpoint replays)
// and where it does not (the head's logits and softmax stay fp32 unless configured otherwise), and
// dynamic loss scaling for fp16 (torch.cuda.amp.GradScaler's rule: skip a step whose gradients are
// not finite and halve the scale; double it after `growthInterval` good steps in a row).
import * as T from "../torch/index.ts";
import { type AmpMode, type Tensor } from "../torch/index.ts";
import { type ProcessGroup } from "../distributed/index.ts";

export type { AmpMode };

export class Precision {
  constructor(
    readonly amp: AmpMode,
    readonly device: "cpu" | "cuda" = "cpu",
    /** "fp32": the head runs with autocast off; "amp": the head's matmul runs in the AMP dtype too. */
    readonly head: "fp32" | "amp" = "fp32",
  ) {
    if (amp === "fp16" && device === "cpu") {
      throw new Error(
        "train.amp: 'fp16' autocast needs a CUDA device (libtorch's CPU autocast is bf16 only); use 'bf16' on CPU",
      );
    }
  }

  /** Runs the backbone's forward (or a checkpoint replay) in the configured autocast. */
  backbone<R>(fn: () => R): R {
    if (this.amp === "none") return fn();
    return T.autocast({ device: this.device, dtype: this.amp === "fp16" ? "f16" : "bf16" }, fn);
  }

  /** Runs the head: fp32 unless configured to follow the backbone's precision. */
  headForward<R>(fn: () => R): R {
    if (this.amp === "none" || this.head === "amp") return this.backbone(fn);
    return T.autocast({ device: this.device, enabled: false }, fn);
  }
}

export interface LossScaleOptions {
  init: number;
  growthFactor: number;
  backoffFactor: number;
  growthInterval: number;
}

export const DEFAULT_LOSS_SCALE: LossScaleOptions = {
  init: 2 ** 16,
  growthFactor: 2,
  backoffFactor: 0.5,
  growthInterval: 2000,
};

export interface LossScaleState {
  scale: number;
  goodSteps: number;
}

export class LossScaler {
  #scale: number;
  #goodSteps = 0;

  constructor(private readonly o: LossScaleOptions = DEFAULT_LOSS_SCALE) {
    if (!(o.init > 0 && o.growthFactor > 1 && o.backoffFactor > 0 && o.backoffFactor < 1)) {
      throw new Error(
        `train.lossScale: need init > 0, growthFactor > 1 and 0 < backoffFactor < 1, got ${JSON.stringify(o)}`,
      );
    }
    if (!(Number.isInteger(o.growthInterval) && o.growthInterval > 0))
      throw new Error(`train.lossScale.growthInterval must be a positive integer, got ${o.growthInterval}`);
    this.#scale = o.init;
  }

  get scale(): number {
    return this.#scale;
  }

  /**
   * Divides the scaled gradients by the scale in place and reports whether every gradient, here
   * and on every other rank (one scalar all-reduce), is finite. `unscaled` are checked only (the
   * fp32 head's gradients carry no scale). A sum is non-finite exactly when an element is, short
   * of an overflow of finite values past 3e38 (no real gradient comes close).
   */
  unscaleAndCheck(group: ProcessGroup, scaled: readonly Tensor[], unscaled: readonly Tensor[]): boolean {
    return T.noGrad(() =>
      T.scope(() => {
        const inv = 1 / this.#scale;
        for (const g of scaled) g.mul_(inv);
        const all = [...scaled, ...unscaled];
        const device = all[0]?.device ?? "cpu";
        const sums = all.length
          ? T.stack(all.map((g) => g.float().sum())).sum()
          : T.scalarTensor(0, { device });
        // On the gradients' device (NCCL reduces CUDA tensors only); one sync, at item().
        const flag = sums.isfinite().logicalNot().float();
        group.allReduce([flag], "max").wait();
        return flag.item() === 0;
      }),
    );
  }

  /** After a step: back off on overflow, grow after enough good steps. */
  update(finite: boolean): void {
    if (!finite) {
      this.#scale *= this.o.backoffFactor;
      this.#goodSteps = 0;
      return;
    }
    if (++this.#goodSteps >= this.o.growthInterval) {
      this.#scale *= this.o.growthFactor;
      this.#goodSteps = 0;
    }
  }

  stateDict(): LossScaleState {
    return { scale: this.#scale, goodSteps: this.#goodSteps };
  }

  loadStateDict(s: LossScaleState): void {
    if (!(s.scale > 0)) throw new Error(`loss scale state: scale must be positive, got ${s.scale}`);
    this.#scale = s.scale;
    this.#goodSteps = s.goodSteps;
  }
}
