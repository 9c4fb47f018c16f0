// Peak resident memory per rank and step time of a training step (backbone + model-parallel head
// + SGD) under each peak-memory switch, on 2 ranks (Gloo, one thread each): plain, +checkpointing,
// +ZeRO-2, +micro-batching ×4, all together. Then the checkpointing saving beside PyTorch's
// torch.utils.checkpoint on r50 (one process each side, same batch, same libtorch).
//
//   npm run bench memory
// Knobs: MFR_BENCH_BACKBONE (r100), MFR_BENCH_BATCH (64 per rank), MFR_BENCH_STEPS (timed steps,
// 2), MFR_BENCH_WARMUP (1), MFR_BENCH_CLASSES (20000), MFR_BENCH_REF_BACKBONE (r50),
// MFR_BENCH_PYTHON (/usr/bin/python3). Writes bench/out/memory.json.
//
// "peak" is the process's maximum RSS; "above base" subtracts the RSS once the model, head,
// optimizer and batch exist, i.e. what the step itself adds (activations, gradients, state).
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { collectJsonLines, launch } from "../src/distributed/index.ts";
import { resolvePreset } from "../src/models/index.ts";
import type { MemoryConfig } from "./memory_worker.ts";

const env = process.env;
const here = path.dirname(fileURLToPath(import.meta.url));
const backbone = env.MFR_BENCH_BACKBONE ?? "r100";
const refBackbone = env.MFR_BENCH_REF_BACKBONE ?? "r50";
const batch = Number(env.MFR_BENCH_BATCH ?? 64);
const steps = Number(env.MFR_BENCH_STEPS ?? 2);
const warmup = Number(env.MFR_BENCH_WARMUP ?? 1);
const classes = Number(env.MFR_BENCH_CLASSES ?? 20000);
const python = env.MFR_BENCH_PYTHON ?? "/usr/bin/python3";

interface Result {
  peakMB: number;
  baselineMB: number;
  seconds: number[];
  params: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Runs one configuration on `ranks` processes; returns the worst rank's figures. */
async function mfr(ranks: number, c: Partial<MemoryConfig>): Promise<Result> {
  const cfg: MemoryConfig = {
    backbone,
    batch,
    classes,
    microBatches: 1,
    checkpoint: "none",
    zero: 0,
    amp: "none",
    warmup,
    steps,
    ...c,
  };
  const job = await launch({
    nprocPerNode: ranks,
    argv: [path.join(here, "memory_worker.ts")],
    execArgv: ["--import", "tsx"],
    env: { ...env, MFR_NUM_THREADS: "1", MFR_BENCH_CONFIG: JSON.stringify(cfg) },
    stdio: "pipe",
  });
  const out = collectJsonLines<Result>(job.children);
  const r = await job.result;
  await out.done;
  const lines = out.lines;
  if (r.exitCode !== 0 || lines.length !== ranks)
    throw new Error(`${JSON.stringify(c)}: ${r.message}\n${out.stderr()}`);
  return {
    peakMB: Math.max(...lines.map((l) => l.peakMB)),
    baselineMB: Math.max(...lines.map((l) => l.baselineMB)),
    seconds: lines.map((l) => median(l.seconds)),
    params: lines[0]!.params,
  };
}

function torch(mode: "none" | "stage"): Result {
  const blocks = resolvePreset(refBackbone);
  if (blocks.family !== "iresnet") throw new Error("MFR_BENCH_REF_BACKBONE must be an iResNet");
  const r = spawnSync(
    python,
    [
      path.join(here, "memory_torch.py"),
      blocks.blocks.join(","),
      String(batch),
      mode,
      String(warmup),
      String(steps),
    ],
    { cwd: here, encoding: "utf8", env: { ...env, OMP_NUM_THREADS: "1" } },
  );
  if (r.status !== 0)
    throw new Error(`PyTorch reference failed (${python} with python3-torch?): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as Result;
}

const row = (name: string, r: Result, plain?: Result): string => {
  const s = median(r.seconds);
  const mem = `${r.peakMB.toFixed(0).padStart(6)} MB peak  ${(r.peakMB - r.baselineMB).toFixed(0).padStart(6)} MB above base`;
  const rel = plain
    ? `  peak ×${(r.peakMB / plain.peakMB).toFixed(2)}, step ×${(s / median(plain.seconds)).toFixed(2)}`
    : "";
  return `  ${name.padEnd(34)} ${mem}  ${s.toFixed(1).padStart(6)} s/step${rel}`;
};

const out: Record<string, unknown> = { backbone, batch, classes, steps, warmup };
console.log(
  `${backbone}, batch ${batch} per rank, 2 ranks (1 thread each), head ${classes} classes, SGD momentum`,
);
// Checkpointing every block is arcface_torch's granularity (its IBasicBlock checkpoints itself);
// per stage keeps fewer inputs but replays a whole stage (r100's third has 30 blocks) at once.
const configs: [string, Partial<MemoryConfig>][] = [
  ["plain", {}],
  ["+ checkpointing (every block)", { checkpoint: { every: 1 } }],
  ["+ checkpointing (per stage)", { checkpoint: "stage" }],
  ["+ ZeRO-2", { zero: 2 }],
  ["+ micro-batches x4", { microBatches: 4 }],
  ["all together (every block)", { checkpoint: { every: 1 }, zero: 2, microBatches: 4 }],
];
let plain: Result | undefined;
const table: Record<string, Result> = {};
for (const [name, c] of configs) {
  const r = await mfr(2, c);
  plain ??= r;
  table[name] = r;
  console.log(row(name, r, plain === r ? undefined : plain));
}
out.mfr = table;

console.log(
  `\ncheckpointing saving, ${refBackbone} batch ${batch}, one process, 1 thread (no head on the PyTorch side)`,
);
const ref: Record<string, Result> = {};
for (const mode of ["none", "stage"] as const) {
  const m = await mfr(1, { backbone: refBackbone, checkpoint: mode === "stage" ? "stage" : "none" });
  const t = torch(mode);
  ref[`mfr ${mode}`] = m;
  ref[`torch ${mode}`] = t;
  console.log(
    row(
      `mfr ${mode === "none" ? "plain" : "checkpoint per stage"}`,
      m,
      mode === "stage" ? ref["mfr none"] : undefined,
    ),
  );
  console.log(
    row(
      `PyTorch ${mode === "none" ? "plain" : "torch.utils.checkpoint"}`,
      t,
      mode === "stage" ? ref["torch none"] : undefined,
    ),
  );
}
const saving = (a: Result, b: Result): number => 1 - (b.peakMB - b.baselineMB) / (a.peakMB - a.baselineMB);
const ms = saving(ref["mfr none"]!, ref["mfr stage"]!);
const ts = saving(ref["torch none"]!, ref["torch stage"]!);
console.log(
  `  step memory saved by checkpointing: mfr ${(100 * ms).toFixed(0)}%, PyTorch ${(100 * ts).toFixed(0)}%`,
);
out.reference = { ...ref, savingMfr: ms, savingTorch: ts };
mkdirSync(path.join(here, "out"), { recursive: true });
writeFileSync(path.join(here, "out", "memory.json"), JSON.stringify(out, null, 2) + "\n");
