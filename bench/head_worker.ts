// One rank of bench/head.bench.ts: the model-parallel head's training step (forward, backward,
// SGD with momentum on the shard) on random embeddings, with the reference head (PartialFC) or
// the fused chunked one (FusedPartialFC, its update inside the gradient pass as the trainer runs
// it); prints one JSON line.
import fs from "node:fs";
import * as T from "../src/torch/index.ts";
import { ProcessGroup } from "../src/distributed/index.ts";
import { FusedPartialFC, PartialFC } from "../src/head/index.ts";
import { SGD } from "../src/optim/index.ts";

const o = JSON.parse(process.env.BENCH_HEAD ?? "{}") as {
  classes: number;
  dim: number;
  batch: number;
  rate: number;
  steps: number;
  fused: boolean;
  chunk?: number;
};
const g = ProcessGroup.init(undefined, { timeoutMs: 600000 });
const rssMB = (key: string): number =>
  Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(fs.readFileSync("/proc/self/status", "utf8"))?.[1]) / 1024;
const baseMB = rssMB("VmRSS");
const local = o.batch / g.worldSize;
const options = {
  numClasses: o.classes,
  embeddingSize: o.dim,
  sampleRate: o.rate,
  margin: { s: 64, m3: 0.4 },
};
const head = o.fused ? new FusedPartialFC(g, { ...options, chunk: o.chunk }) : new PartialFC(g, options);
const opt = new SGD([head.weight], { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
T.manualSeed(g.rank);
const emb = T.randn([local, o.dim]).requiresGrad_().keep();
const times: number[] = [];
for (let i = 0; i < o.steps + 1; i++) {
  g.barrier().wait();
  const t0 = performance.now();
  T.scope(() => {
    const labels = T.randint(0, o.classes, [local], { dtype: "i64" });
    head.zeroGrad();
    emb.grad = undefined;
    const loss = head.forward(emb, labels, { stepWith: opt });
    loss.backward();
    head.step(opt);
  });
  g.barrier().wait();
  if (i > 0) times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
console.log(
  JSON.stringify({
    rank: g.rank,
    stepMs: times[Math.floor(times.length / 2)],
    peakMB: rssMB("VmHWM"),
    baseMB,
  }),
);
g.destroy();
