// Feature distillation of the masked-face recipe: the student's embedding is pulled towards the
// (frozen) teacher's direction, mean over the batch of ‖t/‖t‖ − s/‖s‖‖², and added to the
// classification loss with weight λ = 9 (the challenge's setting), or mixed convexly.
import * as T from "../torch/index.ts";
import { type Tensor } from "../torch/index.ts";

/** mean_i ‖t_i/‖t_i‖ − s_i/‖s_i‖‖² over a batch of embeddings [N, D]; the teacher gets no gradient. */
export function featureDistill(student: Tensor, teacher: Tensor): Tensor {
  if (student.ndim !== 2 || student.shape.join("x") !== teacher.shape.join("x")) {
    throw new Error(
      `featureDistill: student [${student.shape.join(", ")}] and teacher [${teacher.shape.join(", ")}] must be the same [N, D]`,
    );
  }
  return T.scope(() => {
    const t = T.noGrad(() => T.normalize(teacher.detach(), 1));
    return T.normalize(student, 1).sub(t).square().sum(1).mean();
  });
}

/** `{ lambda }`: CE + λ·distill (λ = 9 by default); `{ alpha }`: α·CE + (1 − α)·distill. */
export type DistillWeighting = { lambda?: number } | { alpha: number };

export const CHALLENGE_DISTILL_LAMBDA = 9;

export function distillationLoss(ce: Tensor, distill: Tensor, w: DistillWeighting = {}): Tensor {
  return T.scope(() => {
    if ("alpha" in w) {
      if (!(w.alpha >= 0 && w.alpha <= 1))
        throw new Error(`distillationLoss: alpha must be in [0, 1], got ${w.alpha}`);
      return ce.mul(w.alpha).add(distill.mul(1 - w.alpha));
    }
    return ce.add(distill, w.lambda ?? CHALLENGE_DISTILL_LAMBDA);
  });
}
