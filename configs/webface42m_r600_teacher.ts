// The challenge entry's first teacher, ResNet600 (3/70/220/3 blocks), trained before the student
// with the entry's recipe exactly as webface42m_r240.ts (CosFace on the mask-augmented WebFace42M,
// LARS, every peak-memory switch). webface42m_r240_distill.ts distils from this run's folder.
import { defineConfig } from "../src/train/config.ts";
import recipe from "./webface42m_r240.ts";

export default defineConfig({
  ...recipe,
  runDir: "runs/webface42m-r600-teacher",
  model: { ...recipe.model, backbone: "r600" },
});
