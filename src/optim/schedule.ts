// Learning-rate schedules stepped once per iteration: a linear warm-up to the base rate, then a
// polynomial, cosine or multi-step decay. The factor is a pure function of the iteration, so a
// resumed run only needs the iteration count (stateDict) to continue on the same curve.
import { type Optimizer } from "./optimizer.ts";

export type Decay =
  | { kind: "constant" }
  /** (1 − t)^power over the decay phase (arcface_torch uses power 2). */
  | { kind: "poly"; power?: number }
  /** From 1 down to minFactor along half a cosine. */
  | { kind: "cosine"; minFactor?: number }
  /** × gamma at each milestone (absolute iterations), as the challenge's multi-step schedule. */
  | { kind: "multistep"; milestones: readonly number[]; gamma?: number };

export interface ScheduleOptions {
  /** Iterations of linear warm-up (0 for none). */
  warmupIters: number;
  /** Total iterations of the run (the end of the decay). */
  totalIters: number;
  decay: Decay;
  /** Factor at the very first iteration of warm-up; the ramp reaches 1 at its last one. */
  warmupStartFactor?: number;
}

/**
 * The multiplier of the base learning rate at iteration i (0-based): during warm-up it rises
 * linearly from warmupStartFactor (first iteration) to 1 (last warm-up iteration) — never 0, so
 * no step is wasted; afterwards t = (i − W)/(total − W) in [0, 1] drives the decay.
 */
export function lrFactor(o: ScheduleOptions, i: number): number {
  const w = o.warmupIters;
  if (i < w) {
    const start = o.warmupStartFactor ?? 1 / w;
    return w === 1 ? 1 : start + ((1 - start) * i) / (w - 1);
  }
  const span = Math.max(1, o.totalIters - w);
  const t = Math.min(1, Math.max(0, (i - w) / span));
  const d = o.decay;
  switch (d.kind) {
    case "constant":
      return 1;
    case "poly":
      return (1 - t) ** (d.power ?? 2);
    case "cosine": {
      const min = d.minFactor ?? 0;
      return min + ((1 - min) * (1 + Math.cos(Math.PI * t))) / 2;
    }
    case "multistep":
      return (d.gamma ?? 0.1) ** d.milestones.filter((m) => i >= m).length;
  }
}

/** Linear scaling rule: the base rate for a global batch, given a rate tuned for `reference`. */
export function linearScaledLr(lr: number, globalBatch: number, reference = 256): number {
  return (lr * globalBatch) / reference;
}

/**
 * Sets every parameter group's lr to (its base lr) × lrFactor(iteration). Construct it before
 * the first optimizer step (it sets iteration 0's rate) and call step() after each one.
 */
export class LRScheduler {
  readonly baseLrs: number[];
  #iter = 0;

  constructor(
    readonly optimizer: Optimizer<{ lr: number } & Record<string, number | boolean>>,
    readonly options: ScheduleOptions,
  ) {
    if (!(options.totalIters > options.warmupIters) || options.warmupIters < 0) {
      throw new Error(
        `LRScheduler: need 0 <= warmupIters < totalIters, got ${options.warmupIters} and ${options.totalIters}`,
      );
    }
    this.baseLrs = optimizer.groups.map((g) => g.options.lr);
    this.#apply();
  }

  get iteration(): number {
    return this.#iter;
  }
  /** The rate of the first group now. */
  get lr(): number {
    return this.optimizer.groups[0]?.options.lr ?? NaN;
  }

  step(): void {
    this.#iter++;
    this.#apply();
  }

  stateDict(): { iteration: number; baseLrs: number[] } {
    return { iteration: this.#iter, baseLrs: [...this.baseLrs] };
  }
  loadStateDict(s: { iteration: number; baseLrs: number[] }): void {
    if (s.baseLrs.length !== this.baseLrs.length) {
      throw new Error(
        `LRScheduler state has ${s.baseLrs.length} groups, the optimizer ${this.baseLrs.length}`,
      );
    }
    this.baseLrs.splice(0, this.baseLrs.length, ...s.baseLrs);
    this.#iter = s.iteration;
    this.#apply();
  }

  #apply(): void {
    const f = lrFactor(this.options, this.#iter);
    this.optimizer.groups.forEach((g, k) => {
      (g.options as { lr: number }).lr = this.baseLrs[k]! * f;
    });
  }
}
