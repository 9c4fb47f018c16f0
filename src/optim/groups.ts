// Parameter groups that keep weight decay off one-dimensional parameters (BatchNorm γ/β, biases,
// PReLU slopes), the usual practice for SGD and AdamW; LARS applies the same rule itself.
import { type Tensor } from "../torch/index.ts";

export function decayGroups<H extends Record<string, number | boolean>>(
  named: readonly (readonly [string, Tensor])[],
  weightDecay: number,
  extra: Partial<H> = {},
): { params: Tensor[]; options: Partial<H> & { weightDecay: number } }[] {
  const trainable = named.filter(([, p]) => p.requiresGrad);
  const decayed = trainable.filter(([, p]) => p.ndim > 1).map(([, p]) => p);
  const plain = trainable.filter(([, p]) => p.ndim <= 1).map(([, p]) => p);
  return [
    { params: decayed, options: { ...extra, weightDecay } },
    { params: plain, options: { ...extra, weightDecay: 0 } },
  ];
}
