// The challenge entry's submitted model: ResNet240 trained with the entry's recipe
// (webface42m_r240.ts) plus feature distillation from its ResNet600 teacher
// (webface42m_r600_teacher.ts, trained first): loss = CosFace + λ · mean ‖t/‖t‖ − s/‖s‖‖² with
// λ = 9, the teacher run online on each rank, without gradients, on the same masked images its
// student sees (docs/distillation.md). The entry reports masked-face error 0.0769 for it, against
// 0.0803 from scratch. The teacher is the r600 run's folder (its newest checkpoint); to distil from
// ResNet1.2K: --set distill.teacher=runs/webface42m-r1200-teacher.
import { defineConfig } from "../src/train/config.ts";
import recipe from "./webface42m_r240.ts";
import teacher from "./webface42m_r600_teacher.ts";

export default defineConfig({
  ...recipe,
  runDir: "runs/webface42m-r240-distill",
  distill: { teacher: teacher.runDir, lambda: 9, mode: "online" },
});
