// Weight initialisation, as torch.nn.init: every function fills a tensor in place without
// recording gradients.
import { type Tensor, noGrad } from "../torch/index.ts";

export type Nonlinearity = "linear" | "conv2d" | "sigmoid" | "tanh" | "relu" | "leaky_relu";

export function fans(t: Tensor): { fanIn: number; fanOut: number } {
  const s = t.shape;
  if (s.length < 2) throw new Error(`init: fan in/out needs a tensor with >= 2 dims, got [${s.join(", ")}]`);
  const receptive = s.slice(2).reduce((a, x) => a * x, 1);
  return { fanIn: s[1]! * receptive, fanOut: s[0]! * receptive };
}

export function gain(nl: Nonlinearity, param?: number): number {
  switch (nl) {
    case "linear":
    case "conv2d":
    case "sigmoid":
      return 1;
    case "tanh":
      return 5 / 3;
    case "relu":
      return Math.SQRT2;
    case "leaky_relu": {
      const a = param ?? 0.01;
      return Math.sqrt(2 / (1 + a * a));
    }
  }
}

export function uniform_(t: Tensor, a = 0, b = 1): Tensor {
  return noGrad(() => t.uniform_(a, b));
}
export function normal_(t: Tensor, mean = 0, std = 1): Tensor {
  return noGrad(() => t.normal_(mean, std));
}
export function constant_(t: Tensor, v: number): Tensor {
  return noGrad(() => t.fill_(v));
}
export function zeros_(t: Tensor): Tensor {
  return constant_(t, 0);
}
export function ones_(t: Tensor): Tensor {
  return constant_(t, 1);
}

export interface KaimingOptions {
  a?: number;
  mode?: "fan_in" | "fan_out";
  nonlinearity?: Nonlinearity;
}
function kaimingStd(t: Tensor, o: KaimingOptions): number {
  const f = fans(t);
  const fan = (o.mode ?? "fan_in") === "fan_in" ? f.fanIn : f.fanOut;
  return gain(o.nonlinearity ?? "leaky_relu", o.a ?? 0) / Math.sqrt(fan);
}
export function kaimingNormal_(t: Tensor, o: KaimingOptions = {}): Tensor {
  return normal_(t, 0, kaimingStd(t, o));
}
export function kaimingUniform_(t: Tensor, o: KaimingOptions = {}): Tensor {
  const bound = Math.sqrt(3) * kaimingStd(t, o);
  return uniform_(t, -bound, bound);
}
export function xavierUniform_(t: Tensor, g = 1): Tensor {
  const f = fans(t);
  const bound = g * Math.sqrt(6 / (f.fanIn + f.fanOut));
  return uniform_(t, -bound, bound);
}
export function xavierNormal_(t: Tensor, g = 1): Tensor {
  const f = fans(t);
  return normal_(t, 0, g * Math.sqrt(2 / (f.fanIn + f.fanOut)));
}
