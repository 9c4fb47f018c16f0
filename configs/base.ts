// The challenge recipe on WebFace42M: iResNet-50, CosFace (s 64, m 0.4), batch 256 per rank,
// SGD 0.1 with warm-up and polynomial decay, weight decay 5e-4, masks on 35% of images.
import { defineConfig } from "../src/train/config.ts";

export default defineConfig({
  runDir: "runs/webface42m-r50",
  data: { path: "data/webface42m/train.rec", batchSize: 256, workers: 8, maskProb: 0.35 },
  model: { backbone: "r50", embeddingSize: 512 },
  head: { numClasses: 2059906, sampleRate: 1, margin: "cosface" },
  optim: { lr: 0.1, momentum: 0.9, weightDecay: 5e-4, warmupSteps: 2000, decay: "poly", clipNorm: 5 },
  dist: { compress: "fp16" },
  steps: 200000,
  logEvery: 10,
  checkpointEvery: 5000,
  keepCheckpoints: 3,
});
