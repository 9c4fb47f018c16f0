// Module: a tree of named parameters, buffers and submodules with PyTorch's dotted naming, so
// state dicts map one to one onto PyTorch's (and arcface_torch's) keys.
import { Tensor, callOp, noGrad, opId } from "../torch/index.ts";

// Swaps a tensor's data for another's, keeping the tensor (torch's `param.data = ...`).
const SET_DATA = opId("aten::set_data");

export abstract class Module<I extends unknown[] = [Tensor], O = Tensor> {
  training = true;
  readonly #params = new Map<string, Tensor>();
  readonly #buffers = new Map<string, Tensor>();
  readonly #children = new Map<string, Module<never[], unknown>>();

  abstract forward(...args: I): O;

  /** Registers a trainable tensor (kept out of scopes, requiring grad). */
  protected registerParameter(name: string, t: Tensor): Tensor {
    t.keep();
    if (!t.requiresGrad) t.requiresGrad = true;
    this.#params.set(name, t);
    return t;
  }
  /** Registers state saved in the state dict but not trained (BatchNorm statistics). */
  protected registerBuffer(name: string, t: Tensor): Tensor {
    t.keep();
    this.#buffers.set(name, t);
    return t;
  }
  protected registerModule<M extends Module<never[], unknown>>(name: string, m: M): M {
    this.#children.set(name, m);
    return m;
  }

  /** Replaces a registered parameter (BatchNorm folding, weight tying); the old one is disposed. */
  replaceParameter(name: string, t: Tensor): void {
    const old = this.#params.get(name);
    if (old === undefined) throw new Error(`replaceParameter: no parameter '${name}'`);
    this.registerParameter(name, t);
    if (old !== t) old.dispose();
  }
  /** Drops a parameter (e.g. a bias folded away). */
  removeParameter(name: string): void {
    this.#params.get(name)?.dispose();
    this.#params.delete(name);
  }

  /**
   * Swaps a registered child for another under the same name (BatchNorm folding puts an
   * Identity where a BatchNorm was) and returns the old one, which the caller disposes.
   */
  replaceModule<M extends Module<never[], unknown>>(name: string, m: M): Module<never[], unknown> {
    const old = this.#children.get(name);
    if (old === undefined) throw new Error(`replaceModule: no submodule '${name}'`);
    this.#children.set(name, m);
    return old;
  }

  namedChildren(): [string, Module<never[], unknown>][] {
    return [...this.#children.entries()];
  }
  /** Every module in the tree with its dotted path ("" for this one), depth first. */
  namedModules(prefix = ""): [string, Module<never[], unknown>][] {
    const out: [string, Module<never[], unknown>][] = [[prefix, this as unknown as Module<never[], unknown>]];
    for (const [n, c] of this.#children) out.push(...c.namedModules(prefix ? `${prefix}.${n}` : n));
    return out;
  }
  ownParameters(): [string, Tensor][] {
    return [...this.#params.entries()];
  }
  ownBuffers(): [string, Tensor][] {
    return [...this.#buffers.entries()];
  }
  namedParameters(prefix = ""): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [p, m] of this.namedModules(prefix)) {
      for (const [n, t] of m.ownParameters()) out.push([p ? `${p}.${n}` : n, t]);
    }
    return out;
  }
  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }
  namedBuffers(prefix = ""): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [p, m] of this.namedModules(prefix)) {
      for (const [n, t] of m.ownBuffers()) out.push([p ? `${p}.${n}` : n, t]);
    }
    return out;
  }
  /** Parameters and buffers by dotted name, in PyTorch's order (each module's own, then children). */
  stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [p, m] of this.namedModules()) {
      for (const [n, t] of m.ownParameters()) out.set(p ? `${p}.${n}` : n, t);
      for (const [n, t] of m.ownBuffers()) out.set(p ? `${p}.${n}` : n, t);
    }
    return out;
  }
  /**
   * Copies values in place from a state dict. With strict (the default) missing and unexpected
   * keys are errors; shapes must match exactly. Nothing is changed when an error is raised.
   */
  loadStateDict(
    sd: Map<string, Tensor>,
    opts: { strict?: boolean } = {},
  ): { missing: string[]; unexpected: string[] } {
    const mine = this.stateDict();
    const missing = [...mine.keys()].filter((k) => !sd.has(k));
    const unexpected = [...sd.keys()].filter((k) => !mine.has(k));
    if (opts.strict !== false && (missing.length > 0 || unexpected.length > 0)) {
      throw new Error(
        `loadStateDict: ${missing.length ? `missing keys: ${missing.join(", ")}` : ""}${missing.length && unexpected.length ? "; " : ""}${unexpected.length ? `unexpected keys: ${unexpected.join(", ")}` : ""}`,
      );
    }
    for (const [k, t] of mine) {
      const src = sd.get(k);
      if (src === undefined) continue;
      const a = t.shape.join("x");
      const b = src.shape.join("x");
      if (a !== b)
        throw new Error(`loadStateDict: '${k}' has shape [${b}] in the state dict, [${a}] in the model`);
      // A stored dtype is part of what the file says: converting it (an integer tensor into a
      // float parameter, say) would hide an edited or mismatched file.
      if (t.dtype !== src.dtype)
        throw new Error(`loadStateDict: '${k}' is stored as ${src.dtype}, the model's is ${t.dtype}`);
    }
    noGrad(() => {
      for (const [k, t] of mine) {
        const src = sd.get(k);
        if (src !== undefined) t.copy_(src);
      }
    });
    return { missing, unexpected };
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }
  eval(): this {
    return this.train(false);
  }
  /**
   * Moves every parameter and buffer to `device` in place (PyTorch's `module.to(device)`): each
   * tensor keeps its identity, so fields, optimizers and checkpoint code holding it see the move.
   * Gradients are dropped; call it before building optimizers.
   */
  to(device: string): this {
    noGrad(() => {
      for (const [, t] of this.stateDict()) {
        if (t.device === device) continue;
        t.grad = undefined;
        const moved = t.to(device);
        callOp(SET_DATA, t, moved);
        moved.dispose();
      }
    });
    return this;
  }

  /** Drops every parameter's gradient (set to undefined, as PyTorch's set_to_none). */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = undefined;
  }
  /** Frees every parameter and buffer of the tree. */
  dispose(): void {
    for (const [, t] of this.stateDict()) t.dispose();
  }
  numParameters(): number {
    return this.parameters().reduce((a, p) => a + p.numel, 0);
  }
}

/** A module from one tensor to one tensor: what Sequential chains. */
export type Layer = Module<[Tensor], Tensor>;
