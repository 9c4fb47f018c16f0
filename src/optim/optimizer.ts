// Optimizer base: parameter groups with their own hyper-parameters, per-parameter state held as
// tensors, and a plain state dict (tensors by "state.<index>.<name>" plus JSON-able numbers) so
// optimizer state saves and restores bit-exactly through safetensors.
import { type Tensor, noGrad, scope } from "../torch/index.ts";
import { type LayerLayout } from "./layout.ts";

export interface ParamGroup<H> {
  params: Tensor[];
  options: H;
}

export interface OptimizerStateDict {
  /** Per-parameter state tensors, keyed "<paramIndex>.<name>" (index over all groups in order). */
  tensors: Map<string, Tensor>;
  /** Group hyper-parameters and step counters. */
  groups: Record<string, number | boolean>[];
  steps: Record<string, number>;
}

export abstract class Optimizer<H extends Record<string, number | boolean>> {
  readonly groups: ParamGroup<H>[];
  protected readonly state = new Map<Tensor, Map<string, Tensor>>();
  protected readonly stepCount = new Map<Tensor, number>();

  constructor(params: Tensor[] | { params: Tensor[]; options?: Partial<H> }[], defaults: H) {
    const list =
      params.length > 0 && !(params[0] as { params?: unknown }).params
        ? [{ params: params as Tensor[] }]
        : (params as { params: Tensor[]; options?: Partial<H> }[]);
    this.groups = list.map((g) => ({
      params: g.params,
      options: { ...defaults, ...(("options" in g && g.options) || {}) },
    }));
    const seen = new Set<Tensor>();
    for (const g of this.groups) {
      for (const p of g.params) {
        if (seen.has(p)) throw new Error("optimizer: a parameter appears in more than one group");
        seen.add(p);
      }
    }
  }

  /** Applies one update from the parameters' current gradients (parameters without one are skipped). */
  step(): void {
    noGrad(() => {
      for (const g of this.groups) {
        for (const p of g.params) {
          const grad = p.grad;
          if (grad === undefined) continue;
          let st = this.state.get(p);
          if (st === undefined) {
            st = new Map();
            this.state.set(p, st);
          }
          const n = (this.stepCount.get(p) ?? 0) + 1;
          this.stepCount.set(p, n);
          // Each update runs in a scope of its own: its temporaries are freed as it returns.
          scope(() => this.update(p, grad, st!, g.options, n));
        }
      }
    });
  }

  /**
   * One parameter's update, inside a scope step() opens: temporaries need no freeing, `state`
   * tensors it creates must be kept (Tensor.keep). `grad` is borrowed (p.grad).
   */
  protected abstract update(p: Tensor, grad: Tensor, state: Map<string, Tensor>, h: H, step: number): void;

  /**
   * Tells the optimizer that its parameters are parts of layers held across ranks (ZeRO's
   * pieces). Element-wise rules need nothing of it; LARS takes its norms over whole layers.
   */
  useLayout(_layout: LayerLayout): void {}

  /** Frees the optimizer state (momentum, moments). */
  dispose(): void {
    for (const st of this.state.values()) for (const t of st.values()) t.dispose();
    this.state.clear();
  }

  zeroGrad(): void {
    for (const g of this.groups) for (const p of g.params) p.grad = undefined;
  }

  setLr(lr: number): void {
    for (const g of this.groups) (g.options as Record<string, number | boolean>).lr = lr;
  }

  private allParams(): Tensor[] {
    return this.groups.flatMap((g) => g.params);
  }

  stateDict(): OptimizerStateDict {
    const tensors = new Map<string, Tensor>();
    const steps: Record<string, number> = {};
    this.allParams().forEach((p, i) => {
      const st = this.state.get(p);
      if (st) for (const [k, t] of st) tensors.set(`${i}.${k}`, t);
      const n = this.stepCount.get(p);
      if (n !== undefined) steps[String(i)] = n;
    });
    return { tensors, groups: this.groups.map((g) => ({ ...g.options })), steps };
  }

  loadStateDict(sd: OptimizerStateDict): void {
    const params = this.allParams();
    if (sd.groups.length !== this.groups.length) {
      throw new Error(
        `optimizer state has ${sd.groups.length} parameter groups, this optimizer ${this.groups.length}`,
      );
    }
    this.groups.forEach((g, i) => Object.assign(g.options, sd.groups[i]));
    for (const st of this.state.values()) for (const t of st.values()) t.dispose();
    this.state.clear();
    this.stepCount.clear();
    for (const [key, t] of sd.tensors) {
      const dot = key.indexOf(".");
      const idx = Number(key.slice(0, dot));
      const p = params[idx];
      if (p === undefined || dot < 0) throw new Error(`optimizer state: key '${key}' names no parameter`);
      if (t.shape.join("x") !== p.shape.join("x") && t.numel !== 1) {
        throw new Error(
          `optimizer state: '${key}' has shape [${t.shape.join(", ")}], parameter [${p.shape.join(", ")}]`,
        );
      }
      let st = this.state.get(p);
      if (!st) this.state.set(p, (st = new Map()));
      // A copy on the parameter's device (checkpoints load on the CPU).
      st.set(key.slice(dot + 1), t.to(p.device, { copy: true }).keep());
    }
    for (const [i, n] of Object.entries(sd.steps)) {
      const p = params[Number(i)];
      if (p) this.stepCount.set(p, n);
    }
  }
}
