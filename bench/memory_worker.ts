// One rank of bench/memory.bench.ts: builds the backbone, a model-parallel head and the trainer's
// TrainStep with the switches in MFR_BENCH_CONFIG, runs warm-up + timed steps on random data and
// prints one JSON line: peak resident memory (the process's maxRSS), the RSS once everything is
// built (the baseline the steps add to), and each timed step's wall time.
import * as T from "../src/torch/index.ts";
import { ProcessGroup } from "../src/distributed/index.ts";
import { PartialFC } from "../src/head/index.ts";
import { SGD } from "../src/optim/index.ts";
import { type CheckpointPolicy, buildBackbone } from "../src/models/index.ts";
import { TrainStep } from "../src/train/index.ts";

export interface MemoryConfig {
  backbone: string;
  batch: number;
  classes: number;
  microBatches: number;
  checkpoint: "none" | CheckpointPolicy;
  zero: 0 | 1 | 2;
  amp: "none" | "bf16";
  warmup: number;
  steps: number;
}

const cfg = JSON.parse(process.env.MFR_BENCH_CONFIG ?? "{}") as MemoryConfig;
const g = ProcessGroup.init(undefined, { timeoutMs: 3_600_000 });
T.manualSeed(0);
const net = buildBackbone(cfg.backbone, {
  checkpoint: cfg.checkpoint === "none" ? undefined : cfg.checkpoint,
});
net.train();
const head = new PartialFC(g, {
  numClasses: cfg.classes,
  embeddingSize: 512,
  sampleRate: 1,
  margin: { s: 64, m3: 0.4 },
});
const opts = { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 };
const step = new TrainStep(
  g,
  net,
  [{ params: net.parameters().filter((p) => p.requiresGrad) }],
  head,
  new SGD([head.weight], opts),
  (groups) => new SGD(groups, opts),
  { microBatches: cfg.microBatches, zero: cfg.zero, amp: cfg.amp, clipNorm: 5 },
);
step.broadcastFromRoot(net.namedBuffers().map(([, b]) => b));
const x = T.randn([cfg.batch, 3, 112, 112]).keep();
const y = T.randint(0, cfg.classes, [cfg.batch], { dtype: "i64" }).keep();
const baselineMB = process.memoryUsage().rss / 2 ** 20;
const seconds: number[] = [];
for (let i = 0; i < cfg.warmup + cfg.steps; i++) {
  g.barrier().wait();
  const t0 = performance.now();
  step.run(x, y);
  if (i >= cfg.warmup) seconds.push((performance.now() - t0) / 1000);
}
const peakMB = process.resourceUsage().maxRSS / 1024;
console.log(JSON.stringify({ rank: g.rank, peakMB, baselineMB, seconds, params: net.numParameters() }));
step.dispose();
g.destroy();
