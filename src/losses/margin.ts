// Additive/multiplicative angular margins on the target class: the target cosine cos θ becomes
// cos(m1·θ + m2) − m3 (SphereFace m1, ArcFace m2, CosFace m3), then every logit is scaled by s.
//
// Matching arcface_torch's CombinedMarginLoss, forward and backward:
// * rows labelled −1 (their class lives on another rank under Partial FC) get no margin;
// * the optional inter-class filtering (Partial FC 2022) zeroes non-target cosines above the
//   threshold through a constant mask;
// * the angular part (m1, m2) is computed without gradient, as arcface_torch does with its
//   in-place arccos/cos under no_grad: the backward pass treats it as the identity, so every
//   logit's gradient is s·∂L/∂(output). `angularGradient: "exact"` differentiates it instead;
// * the CosFace part (−m3) is differentiated (it is a constant shift, so exactly s again).
// Unlike arcface_torch, the input logits are never modified in place, and all of m1, m2 and m3
// apply together (arcface_torch handles only pure ArcFace or, when m3 > 0, pure CosFace).
import * as T from "../torch/index.ts";
import { type Tensor } from "../torch/index.ts";

export interface CombinedMarginOptions {
  /** Scale applied to every logit. */
  s: number;
  /** Multiplicative angular margin (SphereFace); 1 for none. */
  m1?: number;
  /** Additive angular margin (ArcFace); 0 for none. */
  m2?: number;
  /** Additive cosine margin (CosFace); 0 for none. */
  m3?: number;
  /** Partial FC's inter-class filtering: zero non-target cosines above this (0 = off). */
  interclassFilteringThreshold?: number;
  /** "straight-through" (arcface_torch, default) or "exact" gradient of the angular margin. */
  angularGradient?: "straight-through" | "exact";
}

export const MARGIN_PRESETS = {
  /** The challenge's choice. */
  cosface: { s: 64, m3: 0.4 },
  arcface: { s: 64, m2: 0.5 },
} as const satisfies Record<string, CombinedMarginOptions>;

export type MarginPreset = keyof typeof MARGIN_PRESETS;

export class CombinedMargin {
  readonly s: number;
  readonly m1: number;
  readonly m2: number;
  readonly m3: number;
  readonly threshold: number;
  readonly exactAngular: boolean;

  constructor(o: CombinedMarginOptions) {
    this.s = o.s;
    this.m1 = o.m1 ?? 1;
    this.m2 = o.m2 ?? 0;
    this.m3 = o.m3 ?? 0;
    this.threshold = o.interclassFilteringThreshold ?? 0;
    this.exactAngular = o.angularGradient === "exact";
    if (!(this.s > 0)) throw new Error(`CombinedMargin: s must be positive, got ${o.s}`);
    if (this.threshold < 0 || this.threshold >= 1) {
      throw new Error(
        `CombinedMargin: interclassFilteringThreshold must be in [0, 1), got ${this.threshold}`,
      );
    }
  }

  /** A preset (`cosface`, `arcface`) with optional overrides. */
  static preset(name: MarginPreset, o: Partial<CombinedMarginOptions> = {}): CombinedMargin {
    return new CombinedMargin({ ...MARGIN_PRESETS[name], ...o });
  }

  get angular(): boolean {
    return this.m1 !== 1 || this.m2 !== 0;
  }

  /**
   * Scaled logits with the margin on each row's target: `logits` are cosines [N, C] (already
   * clamped to [−1, 1]), `labels` class indices [N] or [N, 1], −1 for rows without a target here.
   */
  apply(logits: Tensor, labels: Tensor): Tensor {
    return T.scope(() => {
      const [n, c] = logits.shape as [number, number];
      const y = flatLabels(labels, n, c);
      const valid = y.ne(-1);
      const rows = valid.nonzero().flatten();
      const cols = y.indexSelect(0, rows);
      let x = logits;
      if (this.threshold > 0) {
        const keep = T.noGrad(() => {
          const target = T.zeros([n, c], { dtype: "bool", device: logits.device }).indexPut_(
            [rows, cols],
            T.scalarTensor(1, { dtype: "bool", device: logits.device }),
          );
          return logits.gt(this.threshold).logicalAnd(target.logicalNot()).logicalNot().to(logits.dtype);
        });
        x = logits.mul(keep);
      }
      const target = x.index(rows, cols);
      const shift =
        this.exactAngular || !this.angular ? this.shift(target) : T.noGrad(() => this.shift(target));
      const out = x.mul(this.s);
      // Adding s·(new − old) at the targets leaves ∂out/∂x = s everywhere except through `shift`.
      out.indexPut_([rows, cols], shift.mul(this.s), true);
      return out;
    });
  }

  /** Cross-entropy of the margin logits, averaged over rows whose label is not −1. */
  loss(logits: Tensor, labels: Tensor): Tensor {
    return T.scope(() => {
      const y = flatLabels(labels, logits.size(0), logits.size(1));
      return T.crossEntropy(this.apply(logits, y), y, { ignoreIndex: -1 });
    });
  }

  /** cos(m1·θ + m2) − m3 − cos θ for target cosines t = cos θ. */
  private shift(t: Tensor): Tensor {
    let margined = t;
    if (this.angular) {
      const theta = t.clamp(-1, 1).acos();
      margined = theta.mul(this.m1).add(this.m2).cos();
    }
    return margined.sub(t).sub(this.m3);
  }
}

function flatLabels(labels: Tensor, n: number, c: number): Tensor {
  const y = labels.ndim === 2 && labels.size(1) === 1 ? labels.flatten() : labels.alias();
  if (y.ndim !== 1 || y.size(0) !== n) {
    throw new Error(`CombinedMargin: labels must be [${n}] or [${n}, 1], got [${labels.shape.join(", ")}]`);
  }
  if (y.dtype !== "i64") throw new Error(`CombinedMargin: labels must be int64, got ${y.dtype}`);
  if (n > 0) {
    const [lo, hi] = T.noGrad(() => [y.min().item(), y.max().item()]);
    if (lo! < -1 || hi! >= c) {
      throw new Error(`CombinedMargin: labels must be in [0, ${c}) or -1, got values in [${lo}, ${hi}]`);
    }
  }
  return y;
}
