// Does feature distillation help a small student on masked faces? The issue-14 experiment at demo
// scale, on synthetic identities (docs/distillation.md has the table this prints):
//   1. a larger teacher trained on the mask-augmented training identities;
//   2. the same small student, same steps, from scratch and distilled online (λ = 9 and another λ),
//      for several seeds;
//   3. each evaluated on held-out identities: masked probes against an unmasked gallery of other
//      photos of the same people, exact TPR at FPR 1e-3 and 1e-4 (src/eval).
// Run: node --import tsx scripts/distill-experiment.ts [--out DIR] [--seeds 3] [--steps N]
//      [--teacher-steps N] [--lambdas 9,3] [--identities N] [--images N] [--held-out N]
//      [--device auto|cpu|cuda]
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import * as T from "../src/torch/index.ts";
import { DataLoader, synthesizeDataset } from "../src/data/index.ts";
import { batchToTensors } from "../src/data/tensors.ts";
import { ProcessGroup } from "../src/distributed/index.ts";
import { type Backbone } from "../src/models/index.ts";
import { evaluatePairs } from "../src/eval/index.ts";
import { type TrainConfigInput, parseConfig, train } from "../src/train/index.ts";

const { values: a } = parseArgs({
  options: {
    out: { type: "string", default: "runs/distill-experiment" },
    seeds: { type: "string", default: "3" },
    steps: { type: "string", default: "200" },
    "teacher-steps": { type: "string", default: "400" },
    lambdas: { type: "string", default: "9,3" },
    identities: { type: "string", default: "100" },
    images: { type: "string", default: "12" },
    "held-out": { type: "string", default: "120" },
    device: { type: "string", default: "auto" },
  },
});
const out = a.out!;
const seeds = Array.from({ length: Number(a.seeds) }, (_, i) => i + 1);
const lambdas = a.lambdas!.split(",").map(Number);
const HELD_IMAGES = 6; // per held-out identity: 3 masked probes, 3 unmasked gallery photos
const FPRS = ["1e-3", "1e-4"];

const log = (s: string): void => console.error(`[${new Date().toISOString().slice(11, 19)}] ${s}`);

async function synth(dir: string, identities: number, images: number, seed: number): Promise<void> {
  if (fs.existsSync(path.join(dir, ".complete"))) return;
  await synthesizeDataset({ out: dir, identities, imagesPerIdentity: images, seed });
  fs.writeFileSync(path.join(dir, ".complete"), "");
}

const base = (runDir: string, data: string): TrainConfigInput => ({
  runDir,
  device: a.device as "auto" | "cpu" | "cuda",
  data: { path: data, batchSize: 32, workers: 1, maskProb: 0.35, flipProb: 0.5 },
  model: { backbone: "[1,1,1,1]", width: 0.25, embeddingSize: 64 },
  head: { numClasses: 0, sampleRate: 1, margin: { s: 32, m3: 0.3 } },
  optim: { lr: 0.1, warmupSteps: 10, decay: "poly" },
  dist: {},
  steps: 1,
  logEvery: 10,
});

/** Held-out faces: the first 3 photos of each identity masked (probes), the other 3 not (gallery). */
async function heldOut(dir: string): Promise<{ x: T.Tensor; labels: number[]; groups: number[] }> {
  const pass = async (maskProb: number): Promise<{ x: T.Tensor; y: number[] }> => {
    const loader = await DataLoader.open(dir, {
      batchSize: 64,
      shuffle: false,
      workers: 1,
      maskProb,
      flipProb: 0,
      tail: "pad",
      seed: 7,
    });
    const xs: T.Tensor[] = [];
    const ys: number[] = [];
    try {
      for await (const b of loader.epoch(0)) {
        const t = batchToTensors(b);
        xs.push(t.x.keep());
        ys.push(...b.labels);
        t.y.dispose();
        t.masked.dispose();
      }
    } finally {
      await loader.close();
    }
    // The last batch is padded by wrapping around: drop those repeats of the first photos.
    const n = loader.dataset.length;
    const x = T.scope(() => T.cat(xs).narrow(0, 0, n).contiguous().keep());
    for (const t of xs) t.dispose();
    return { x, y: ys.slice(0, n) };
  };
  const masked = await pass(1);
  const plain = await pass(0);
  const n = plain.y.length;
  const rows: number[] = [];
  const groups: number[] = [];
  for (let i = 0; i < n; i++) {
    const probe = i % HELD_IMAGES < HELD_IMAGES / 2;
    rows.push(probe ? i : n + i);
    groups.push(probe ? 1 : 0);
  }
  return T.scope(() => {
    const all = T.cat([masked.x, plain.x]);
    const x = all.indexSelect(0, T.tensor(rows, { dtype: "i64" })).keep();
    return { x, labels: plain.y, groups };
  });
}

async function evaluate(
  model: Backbone,
  h: { x: T.Tensor; labels: number[]; groups: number[] },
): Promise<Record<string, number>> {
  model.eval();
  const device = model.parameters()[0]!.device;
  const e = T.scope(() => T.noGrad(() => model.forward(T.toDevice(h.x, device)).to("cpu")));
  const r = await evaluatePairs({ embeddings: e, labels: h.labels, groups: h.groups }, { fpr: FPRS });
  e.dispose();
  const s = r.subsets["masked-unmasked"]!;
  return Object.fromEntries(FPRS.map((f) => [f, s.tpr[f] ?? NaN]));
}

async function run(cfg: TrainConfigInput): Promise<Backbone> {
  fs.rmSync(cfg.runDir, { recursive: true, force: true });
  const t0 = performance.now();
  const r = await train(parseConfig(cfg), { group: ProcessGroup.single() });
  log(
    `${cfg.runDir}: ${cfg.steps} steps in ${((performance.now() - t0) / 1000).toFixed(0)} s, loss ${r.losses[0]!.loss.toFixed(2)} -> ${r.losses.at(-1)!.loss.toFixed(2)}`,
  );
  return r.backbone;
}

const trainData = path.join(out, "train");
const heldData = path.join(out, "held-out");
await synth(trainData, Number(a.identities), Number(a.images), 1);
await synth(heldData, Number(a["held-out"]), HELD_IMAGES, 2);
log("data ready");
const h = await heldOut(heldData);

const teacherRun = path.join(out, "teacher");
const tSteps = Number(a["teacher-steps"]);
const teacher = await run({
  ...base(teacherRun, trainData),
  model: { backbone: "[2,2,2,2]", width: 0.5, embeddingSize: 64 },
  steps: tSteps,
  checkpointEvery: tSteps,
  keepCheckpoints: 1,
});
const results: { name: string; seed: number; tpr: Record<string, number> }[] = [];
results.push({ name: "teacher [2,2,2,2]×0.5", seed: 0, tpr: await evaluate(teacher, h) });
teacher.dispose();
log(`teacher: ${JSON.stringify(results[0]!.tpr)}`);

const conditions: { name: string; lambda?: number }[] = [
  { name: "student from scratch" },
  ...lambdas.map((l) => ({ name: `student distilled λ=${l}`, lambda: l })),
];
for (const seed of seeds)
  for (const c of conditions) {
    const runDir = path.join(out, `s${seed}-${c.lambda ?? "scratch"}`);
    const student = await run({
      ...base(runDir, trainData),
      seed,
      head: { numClasses: 0, sampleRate: 1, margin: { s: 32, m3: 0.3 }, seed },
      steps: Number(a.steps),
      ...(c.lambda !== undefined ? { distill: { teacher: teacherRun, lambda: c.lambda } } : {}),
    });
    const tpr = await evaluate(student, h);
    student.dispose();
    results.push({ name: c.name, seed, tpr });
    log(`${c.name} seed ${seed}: ${JSON.stringify(tpr)}`);
  }
fs.writeFileSync(path.join(out, "results.json"), JSON.stringify(results, null, 2) + "\n");

// The table: mean ± sample standard deviation over seeds, and each seed's figure.
const stats = (xs: number[]): string => {
  const m = xs.reduce((s, x) => s + x, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1)) : 0;
  return `${m.toFixed(3)} ± ${sd.toFixed(3)} (${xs.map((x) => x.toFixed(3)).join(", ")})`;
};
const lines = [
  `| model | ${FPRS.map((f) => `TPR@FPR=${f}`).join(" | ")} |`,
  `|---|${FPRS.map(() => "---").join("|")}|`,
];
for (const name of [results[0]!.name, ...conditions.map((c) => c.name)]) {
  const rs = results.filter((r) => r.name === name);
  lines.push(`| ${name} | ${FPRS.map((f) => stats(rs.map((r) => r.tpr[f]!))).join(" | ")} |`);
}
console.log(lines.join("\n"));
h.x.dispose();
