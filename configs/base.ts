// What every WebFace42M config here shares. The data: WebFace42M (2,059,906 identities,
// 42,474,558 aligned 112×112 faces) as InsightFace RecordIO, with its lfw/cfp_fp/agedb_30 .bin
// verification sets beside it, checked every 5000 steps; synthetic masks on 35% of images. The
// model: iResNet-50, 512-d embeddings, CosFace (s = 64, m = 0.4) on the model-parallel head over
// every class. The optimizer: arcface_torch's SGD (lr 0.1, momentum 0.9, weight decay 5e-4) with
// warm-up, polynomial decay and gradient clip 5. This is not the challenge entry's recipe (LARS,
// multistep, every memory switch: webface42m_r240.ts); arcface_torch's own WebFace42M baseline is
// webface42m_r100.ts.
import { defineConfig } from "../src/train/config.ts";

const data = "data/webface42m";

export default defineConfig({
  runDir: "runs/webface42m-r50",
  data: { path: `${data}/train.rec`, batchSize: 256, workers: 8, maskProb: 0.35 },
  model: { backbone: "r50", embeddingSize: 512 },
  head: { numClasses: 2059906, sampleRate: 1, margin: "cosface" },
  optim: { lr: 0.1, momentum: 0.9, weightDecay: 5e-4, warmupSteps: 2000, decay: "poly", clipNorm: 5 },
  dist: { compress: "fp16" },
  steps: 200000,
  logEvery: 10,
  checkpointEvery: 5000,
  keepCheckpoints: 3,
  verify: {
    every: 5000,
    sets: [{ bin: `${data}/lfw.bin` }, { bin: `${data}/cfp_fp.bin` }, { bin: `${data}/agedb_30.bin` }],
  },
});
