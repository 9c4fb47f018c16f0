// GPU training benchmark, mfr vs PyTorch (bench/gpu_train_torch.py) in the same run: one rank's
// step of the recipe on one GPU — iResNet-100 at batch 128 under bf16 or fp16 autocast (fp16 with
// dynamic loss scaling), a 1 M-class CosFace head at sampleRate 1.0 and 0.2, SGD with momentum,
// gradient clipping — on a fixed synthetic batch, so only the step is timed. Each case runs in a
// fresh process per side (so peak memory is that case's), mfr then PyTorch, case by case.
// Prints one JSON line per case and side, then a table. Not part of `npm run bench` (needs CUDA).
// Usage: node --import tsx bench/gpu_train.ts [--model r100] [--batch 128] [--classes 1000000]
//        [--steps 10] [--warmup 3] [--amp bf16,fp16] [--rates 1,0.2] [--python python3]
//        [--only mfr|torch] [--device cpu (a smoke run of the mfr side)]
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as T from "../src/torch/index.ts";
import { ProcessGroup } from "../src/distributed/index.ts";
import { PartialFC } from "../src/head/index.ts";
import { SGD } from "../src/optim/index.ts";
import { PRESETS, buildBackbone } from "../src/models/index.ts";
import { TrainStep } from "../src/train/step.ts";

const here = path.dirname(fileURLToPath(import.meta.url));

interface Case {
  model: string;
  blocks: number[];
  batch: number;
  classes: number;
  rate: number;
  amp: "bf16" | "fp16";
  steps: number;
  warmup: number;
  /** "cuda" (default) or "cpu" for a smoke run of the mfr side (peak memory is then RSS). */
  device?: "cuda" | "cpu";
}
interface Result {
  imagesPerSec: number;
  stepMs: number;
  peakMB: number;
  loss: number;
}

/** One case in this process: mfr's TrainStep on CUDA. */
function runCase(c: Case): Result {
  const device = T.resolveDevice(c.device ?? "cuda", Number(process.env.LOCAL_RANK ?? 0));
  const cuda = T.deviceKind(device) === "cuda";
  T.manualSeed(0);
  const net = buildBackbone(c.model).to(device).train();
  const group = ProcessGroup.single();
  const head = new PartialFC(group, {
    numClasses: c.classes,
    embeddingSize: 512,
    sampleRate: c.rate,
    margin: { s: 64, m3: 0.4 },
    device,
  });
  const sgd = (groups: { params: T.Tensor[] }[]): SGD =>
    new SGD(groups, { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
  const params = net.parameters().filter((p) => p.requiresGrad);
  const step = new TrainStep(group, net, [{ params }], head, sgd([{ params: [head.weight] }]), sgd as never, {
    amp: c.amp,
    device,
    clipNorm: 5,
  });
  const x = T.randn([c.batch, 3, 112, 112], { device }).keep();
  const y = T.randint(0, c.classes, [c.batch], { device }).keep();
  let loss = 0;
  for (let i = 0; i < c.warmup; i++) loss = step.run(x, y).loss;
  T.synchronize(device);
  if (cuda) T.cudaMemory(device, { resetPeak: true });
  const times: number[] = [];
  for (let i = 0; i < c.steps; i++) {
    const t0 = performance.now();
    loss = step.run(x, y).loss; // the loss's item() waits for the step's kernels
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  const med = times[Math.floor(times.length / 2)]!;
  const peakMB = (cuda ? T.cudaMemory(device).peakAllocated : process.memoryUsage().rss) / 2 ** 20;
  return { imagesPerSec: c.batch / med, stepMs: med * 1000, peakMB, loss };
}

function side(label: string, cmd: string, args: string[]): Result {
  const r = spawnSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  const line = r.stdout.trim().split("\n").at(-1) ?? "";
  if (r.status !== 0 || !line.startsWith("{"))
    throw new Error(`the ${label} side failed (exit ${r.status}; its messages are above)`);
  return JSON.parse(line) as Result;
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      case: { type: "string" },
      model: { type: "string", default: "r100" },
      batch: { type: "string", default: "128" },
      classes: { type: "string", default: "1000000" },
      steps: { type: "string", default: "10" },
      warmup: { type: "string", default: "3" },
      amp: { type: "string", default: "bf16,fp16" },
      rates: { type: "string", default: "1,0.2" },
      python: { type: "string", default: "python3" },
      device: { type: "string", default: "cuda" },
      only: { type: "string" },
    },
  });
  if (a.case) {
    console.log(JSON.stringify(runCase(JSON.parse(a.case) as Case)));
    return;
  }
  const preset = PRESETS[a.model as keyof typeof PRESETS] as
    (typeof PRESETS)[keyof typeof PRESETS] | undefined;
  if (preset?.family !== "iresnet") throw new Error(`--model ${a.model}: not an iResNet preset`);
  const blocks = preset.blocks;
  const rows: string[] = [];
  for (const amp of a.amp.split(",") as Case["amp"][]) {
    for (const rate of a.rates.split(",").map(Number)) {
      const c: Case = {
        model: a.model,
        blocks: [...blocks],
        batch: Number(a.batch),
        classes: Number(a.classes),
        rate,
        amp,
        steps: Number(a.steps),
        warmup: Number(a.warmup),
        device: a.device === "cpu" ? "cpu" : "cuda",
      };
      const json = JSON.stringify(c);
      const m =
        a.only === "torch"
          ? undefined
          : side("mfr", process.execPath, [
              "--import",
              "tsx",
              fileURLToPath(import.meta.url),
              "--case",
              json,
            ]);
      if (m) console.log(JSON.stringify({ side: "mfr", ...c, ...m }));
      const t =
        a.only === "mfr"
          ? undefined
          : side("PyTorch", a.python, [path.join(here, "gpu_train_torch.py"), json]);
      if (t) console.log(JSON.stringify({ side: "pytorch", ...c, ...t }));
      const f = (r: Result | undefined, k: keyof Result, d = 0): string => (r ? r[k].toFixed(d) : "-");
      rows.push(
        `| ${a.model} b${c.batch} ${amp}, ${c.classes} classes, rate ${rate} | ${f(m, "imagesPerSec")} | ${f(t, "imagesPerSec")} | ${m && t ? (m.imagesPerSec / t.imagesPerSec).toFixed(2) : "-"} | ${f(m, "peakMB")} | ${f(t, "peakMB")} |`,
      );
    }
  }
  console.log(
    "\n| case | mfr images/s | PyTorch images/s | mfr / PyTorch | mfr peak MiB | PyTorch peak MiB |",
  );
  console.log("| --- | --- | --- | --- | --- | --- |");
  for (const r of rows) console.log(r);
}

await main();
