// The demo's student (`mfr demo`, src/demo): the entry's recipe at toy scale on synthetic
// identities, every memory switch on so that the demo exercises them: the model-parallel head with
// sampling, 2 micro-batches per rank, activation checkpointing per stage, bf16 autocast, ZeRO-1.
// The distilled student is this config plus `--set distill.teacher=RUN_DIR` (λ = 9 by default);
// the teacher (demo_teacher.ts) derives from it.
import { defineConfig } from "../src/train/config.ts";
import base from "./base.ts";

export default defineConfig({
  ...base,
  runDir: "runs/demo/student",
  data: { ...base.data, path: "runs/demo/data", batchSize: 32, workers: 1, maskProb: 0.35 },
  model: { backbone: "[1,1,1,1]", width: 0.25, embeddingSize: 64 },
  head: { numClasses: 0, sampleRate: 0.5, margin: { s: 32, m3: 0.3 } },
  optim: { ...base.optim, lr: 0.1, warmupSteps: 20 },
  dist: { compress: "none" },
  train: { microBatches: 2, checkpoint: "stage", amp: "bf16", zero: 1 },
  steps: 300,
  logEvery: 10,
  checkpointEvery: 100,
  keepCheckpoints: 2,
  // Unseen synthetic identities, half of their photos masked (`mfr demo` writes them there).
  verify: {
    every: 100,
    sets: [{ data: "runs/demo/held-out", name: "held-out", maskProb: 0.5, fpr: ["1e-3", "1e-4"] }],
  },
});
