// arcface_torch's WebFace42M baseline, for comparison with the challenge recipe: its
// configs/wf42m_pfc02_r100.py. iResNet-100, CosFace (s = 64, m = 0.4), Partial FC sampling 20% of
// each shard's classes, fp16 AMP, SGD 0.1 (momentum 0.9, weight decay 5e-4) with polynomial decay
// (power 2) and no warm-up, gradient clip 5, batch 128 per rank, 20 epochs, LFW/CFP-FP/AgeDB-30
// every 10000 steps, DDP buckets of 16 MB without compression, and no synthetic masks
// (arcface_torch draws none). steps is arcface_torch's total_step at 8 ranks,
// 20 × ⌊42,474,557 / (128 × 8)⌋; on K ranks use 20 × ⌊42,474,557 / (128 K)⌋.
import { defineConfig } from "../src/train/config.ts";
import base from "./base.ts";

export default defineConfig({
  ...base,
  runDir: "runs/webface42m-r100",
  data: { ...base.data, batchSize: 128, maskProb: 0 },
  model: { ...base.model, backbone: "r100" },
  head: { ...base.head, sampleRate: 0.2 },
  optim: { ...base.optim, warmupSteps: 0 },
  dist: { compress: "none", bucketCapMB: 16 },
  train: { amp: "fp16" },
  steps: 20 * Math.floor(42474557 / (128 * 8)),
  verify: { ...base.verify!, every: 10000 },
});
