// The challenge entry's larger teacher, ResNet1.2K (3/80/512/3 blocks), trained with the entry's
// recipe exactly as webface42m_r240.ts (CosFace on the mask-augmented WebFace42M, LARS, every
// peak-memory switch). To distil from it, point webface42m_r240_distill.ts's teacher at this run:
// --set distill.teacher=runs/webface42m-r1200-teacher.
import { defineConfig } from "../src/train/config.ts";
import recipe from "./webface42m_r240.ts";

export default defineConfig({
  ...recipe,
  runDir: "runs/webface42m-r1200-teacher",
  model: { ...recipe.model, backbone: "r1200" },
});
