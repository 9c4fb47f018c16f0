// Where an optimizer's parameters lie in the model's layers. Element-wise rules (SGD, AdamW) never
// ask; LARS needs each layer's whole ‖w‖ and ‖g‖, which a sharded parameter (a ZeRO piece, a
// model-parallel head shard) holds only part of. A layout names, for each parameter the optimizer
// steps, the stretches of its flat elements and the layer each belongs to, and how to sum partial
// per-layer figures over the ranks that hold the other parts.
import { type Tensor } from "../torch/index.ts";

export interface Stretch {
  /** Index into the layout's layers. */
  layer: number;
  /** Offset into the parameter's flat elements, and length. */
  at: number;
  len: number;
}

export interface LayerLayout {
  /** Each layer's number of dimensions (LARS exempts those with ≤ 1), the same order on every rank. */
  readonly ndims: readonly number[];
  /** Where an optimized parameter's elements lie; [] for elements of no layer (padding). */
  stretches(p: Tensor): readonly Stretch[];
  /** Sums a [layers, k] tensor of per-layer partial sums over the ranks, in place. */
  allReduce(t: Tensor): void;
}

/**
 * Every parameter one layer: whole on this rank (the default), or, given `allReduce`, a shard of a
 * layer whose other rows live on the other ranks (the model-parallel head's class centres).
 */
export function wholeLayers(
  params: readonly Tensor[],
  allReduce: (t: Tensor) => void = () => undefined,
): LayerLayout {
  const index = new Map(params.map((p, i) => [p, i]));
  return {
    ndims: params.map((p) => p.ndim),
    stretches: (p) => [{ layer: index.get(p)!, at: 0, len: p.numel }],
    allReduce,
  };
}
