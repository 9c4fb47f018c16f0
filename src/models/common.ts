// Pieces the backbones share: channel scaling, checkpoint policies, BatchNorm folding of a child,
// and the cost (parameters, multiply-accumulates) bookkeeping behind `mfr models`.
import {
  BatchNorm1d,
  BatchNorm2d,
  type Conv2d,
  Identity,
  type Linear,
  type Module,
  Sequential,
  foldIntoPreceding,
} from "../nn/index.ts";

/** Channels after a width multiplier (at least one). */
export function scaled(channels: number, width: number): number {
  return Math.max(1, Math.round(channels * width));
}

/**
 * Which blocks run as one checkpointed segment: each stage, or every k consecutive blocks.
 * Off by default; used only in training with gradients on.
 */
export type CheckpointPolicy = "stage" | { every: number } | undefined;

/** Splits block lists (one per stage) into checkpoint segments. */
export function segmentBlocks<B>(stages: readonly (readonly B[])[], policy: CheckpointPolicy): B[][] {
  if (policy === undefined) return [];
  if (policy === "stage") return stages.filter((s) => s.length > 0).map((s) => [...s]);
  const k = policy.every;
  if (!Number.isInteger(k) || k < 1)
    throw new Error(`checkpoint: 'every' must be a positive integer, got ${k}`);
  const flat = stages.flat();
  const out: B[][] = [];
  for (let i = 0; i < flat.length; i += k) out.push(flat.slice(i, i + k));
  return out;
}

/**
 * Folds the BatchNorm child `bnName` of `owner` into `layer` (the conv or linear right before
 * it), puts an Identity in its place and returns it, so the owner can update its field.
 */
export function foldChild(owner: Module<never[], unknown>, bnName: string, layer: Conv2d | Linear): Identity {
  const bn = owner.namedChildren().find(([n]) => n === bnName)?.[1];
  if (!(bn instanceof BatchNorm2d || bn instanceof BatchNorm1d)) {
    throw new Error(`foldBatchNorm: '${bnName}' is not a BatchNorm`);
  }
  foldIntoPreceding(layer, bn);
  return replaceWithIdentity(owner, bnName);
}

/** Puts an Identity in place of the child `name` (disposing the old one) and returns it. */
export function replaceWithIdentity(owner: Module<never[], unknown>, name: string): Identity {
  const id = new Identity();
  const old = owner.replaceModule(name, id);
  if (owner instanceof Sequential) owner.layers[Number(name)] = id;
  old.dispose();
  return id;
}

/** Parameters and multiply-accumulates of a network, built up layer by layer. */
export class Cost {
  params = 0;
  macs = 0;
  conv(cin: number, cout: number, k: number, outSize: number, groups = 1, bias = false): this {
    const w = (cout * cin * k * k) / groups;
    this.params += w + (bias ? cout : 0);
    this.macs += w * outSize * outSize;
    return this;
  }
  bn(c: number): this {
    this.params += 2 * c;
    return this;
  }
  prelu(c: number): this {
    this.params += c;
    return this;
  }
  linear(cin: number, cout: number, bias: boolean): this {
    this.params += cin * cout + (bias ? cout : 0);
    this.macs += cin * cout;
    return this;
  }
}
