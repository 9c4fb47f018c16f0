// The distillation term of the step's loss: λ · mean_i ‖t_i/‖t_i‖ − s_i/‖s_i‖‖² (losses/distill.ts),
// where s is the student's embedding, or, when the student's embedding size differs from the
// teacher's, a learned linear projection of it (no bias: only directions matter). The projection
// trains with the backbone (its optimizer, data-parallel sync, ZeRO, clip), is saved in the
// trainer's checkpoints beside the backbone ("distill.projection.*"), and is not part of the
// backbone: export, embed and eval never see it.
import * as T from "../../torch/index.ts";
import { type Tensor } from "../../torch/index.ts";
import { Linear } from "../../nn/index.ts";
import { featureDistill } from "../../losses/index.ts";

export class DistillTerm {
  readonly projection: Linear | undefined;

  constructor(
    readonly lambda: number,
    readonly studentSize: number,
    readonly teacherSize: number,
    device = "cpu",
  ) {
    if (!(lambda >= 0)) throw new Error(`distill.lambda must be ≥ 0, got ${lambda}`);
    this.projection =
      studentSize === teacherSize ? undefined : new Linear(studentSize, teacherSize, { bias: false });
    this.projection?.to(device);
  }

  /** The parameters that train with the student (the projection's; none without one). */
  parameters(): Tensor[] {
    return this.projection?.parameters() ?? [];
  }

  /** The distillation loss of student embeddings [n, Ds] against teacher embeddings [n, Dt]. */
  loss(student: Tensor, teacher: Tensor): Tensor {
    return T.scope(() => {
      const s = student.float();
      return featureDistill(this.projection ? this.projection.forward(s) : s, teacher.float());
    });
  }
}
