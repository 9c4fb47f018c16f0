// The embedded demo: synthetic identities (mfr synth), a width-reduced iResNet, CosFace, a couple
// of minutes on two CPU cores.
import { defineConfig } from "../src/train/config.ts";
import base from "./base.ts";

export default defineConfig({
  ...base,
  runDir: "runs/demo",
  data: { ...base.data, path: "runs/demo/data", batchSize: 32, workers: 1, maskProb: 0.35 },
  model: { backbone: "[1,1,1,1]", width: 0.25, embeddingSize: 64 },
  head: { numClasses: 0, sampleRate: 1, margin: { s: 32, m3: 0.3 } },
  optim: { ...base.optim, lr: 0.1, warmupSteps: 10 },
  dist: { compress: "none" },
  steps: 150,
  logEvery: 1,
  checkpointEvery: 50,
  keepCheckpoints: 2,
  // Unseen synthetic identities, half of their images masked (runDemo puts them in its folder).
  verify: {
    every: 50,
    sets: [{ data: "runs/demo/held-out", name: "held-out", maskProb: 0.5, fpr: ["1e-2"] }],
  },
});
