// Head benchmark: the model-parallel head's training step (forward, backward, SGD with momentum
// on the shard) per rank, mfr's fused chunked head vs arcface_torch's PartialFC_V2 algorithm in
// PyTorch on Gloo (bench/head_torch.py), run one after the other on this machine: median step time
// and peak RSS per rank, with the goals of docs/training.md.
//   (a) 1 M classes × 512, global batch 512, 2 ranks, sampleRate 1.0 and 0.1, mfr vs PyTorch
//   (b) the WebFace42M head, 2,059,906 × 512, full softmax, 4 ranks, global batch 256 (mfr), its
//       peak against the fused head's memory formula (fusedHeadBytes)
// --reference adds mfr's reference head (PartialFC, the memory of PyTorch's) to each row of (a).
// Usage: node --import tsx bench/head.bench.ts [--part a|b|all] [--steps N] [--classes C] [--batch B]
//        [--rates 1,0.1] [--b-batch B] [--b-rate R] [--chunk N] [--reference]
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { collectJsonLines, freePort, launch } from "../src/distributed/index.ts";
import { fusedHeadBytes } from "../src/head/index.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    part: { type: "string", default: "all" },
    steps: { type: "string", default: "3" },
    classes: { type: "string" },
    batch: { type: "string" },
    rates: { type: "string", default: "1,0.1" },
    "b-batch": { type: "string", default: "256" },
    "b-rate": { type: "string", default: "1" },
    chunk: { type: "string" },
    reference: { type: "boolean", default: false },
  },
});

interface RankResult {
  rank: number;
  stepMs: number;
  peakMB: number;
  /** RSS before the head exists (the process: runtime, libtorch). */
  baseMB?: number;
}
interface Case {
  classes: number;
  dim: number;
  batch: number;
  rate: number;
  steps: number;
  fused?: boolean;
  chunk?: number;
}

async function runMfr(k: number, c: Case): Promise<RankResult[]> {
  const job = await launch({
    nprocPerNode: k,
    argv: [path.join(here, "head_worker.ts")],
    execArgv: ["--import", "tsx"],
    env: { ...process.env, MFR_NUM_THREADS: "1", BENCH_HEAD: JSON.stringify(c) },
    stdio: "pipe",
  });
  const r = collectJsonLines<RankResult>(job.children);
  const res = await job.result;
  await r.done;
  if (res.exitCode !== 0)
    throw new Error(`mfr head bench failed: ${res.message}\n${r.stderr().slice(-2000)}`);
  return r.lines.sort((a, b) => a.rank - b.rank);
}

async function runTorch(k: number, c: Case): Promise<RankResult[]> {
  const port = await freePort();
  const children = Array.from({ length: k }, (_, rank) =>
    spawn("/usr/bin/python3", [path.join(here, "head_torch.py")], {
      env: {
        ...process.env,
        OMP_NUM_THREADS: "1",
        MASTER_ADDR: "127.0.0.1",
        MASTER_PORT: String(port),
        RANK: String(rank),
        WORLD_SIZE: String(k),
        BENCH_HEAD: JSON.stringify(c),
      },
    }),
  );
  const r = collectJsonLines<RankResult>(children);
  const codes = await Promise.all(
    children.map((ch) => new Promise<number | null>((res) => ch.on("close", res))),
  );
  await r.done;
  if (codes.some((x) => x !== 0))
    throw new Error(`PyTorch head bench failed (${codes.join(",")}):\n${r.stderr().slice(-2000)}`);
  return r.lines.sort((a, b) => a.rank - b.rank);
}

const fmt = (rs: RankResult[]): string =>
  `step ${Math.max(...rs.map((r) => r.stepMs)).toFixed(0)} ms, peak RSS/rank ${rs.map((r) => r.peakMB.toFixed(0)).join(" / ")} MB`;

const steps = Number(args.steps);
const chunk = args.chunk === undefined ? undefined : Number(args.chunk);
/** Goals of issue 17 per sampleRate of (a): speed at least, memory at most (× PyTorch). */
const goals = new Map([
  [1, { speed: 1.5, memory: 0.4 }],
  [0.1, { speed: 1.6, memory: 0.94 }],
]);
const slowest = (rs: RankResult[]): number => Math.max(...rs.map((r) => r.stepMs));
const largest = (rs: RankResult[]): number => Math.max(...rs.map((r) => r.peakMB));
if (args.part === "a" || args.part === "all") {
  const classes = Number(args.classes ?? 1_000_000);
  const batch = Number(args.batch ?? 512);
  console.log(
    `(a) ${classes} classes x 512, global batch ${batch}, 2 ranks (Gloo, 1 thread each), median of ${steps} steps`,
  );
  for (const rate of args.rates.split(",").map(Number)) {
    const c = { classes, dim: 512, batch, rate, steps };
    const mfr = await runMfr(2, { ...c, fused: true, chunk });
    console.log(`  sampleRate ${rate}: mfr fused     ${fmt(mfr)}`);
    if (args.reference)
      console.log(`  sampleRate ${rate}: mfr reference ${fmt(await runMfr(2, { ...c, fused: false }))}`);
    const torch = await runTorch(2, c);
    console.log(`  sampleRate ${rate}: PyTorch       ${fmt(torch)}`);
    const goal = goals.get(rate);
    console.log(
      `  sampleRate ${rate}: speed ${(slowest(torch) / slowest(mfr)).toFixed(2)}x${goal ? ` (goal >= ${goal.speed})` : ""}, ` +
        `memory ${(largest(mfr) / largest(torch)).toFixed(2)}x${goal ? ` (goal <= ${goal.memory})` : ""}`,
    );
  }
}
if (args.part === "b" || args.part === "all") {
  const c = {
    classes: 2_059_906,
    dim: 512,
    batch: Number(args["b-batch"]),
    rate: Number(args["b-rate"]),
    steps,
    fused: true,
    chunk,
  };
  console.log(
    `(b) WebFace42M head ${c.classes} x 512, 4 ranks, global batch ${c.batch}, sampleRate ${c.rate} (fused)`,
  );
  const rs = await runMfr(4, c);
  console.log(`  mfr ${fmt(rs)} (goal <= 3072 MB)`);
  const model = fusedHeadBytes({
    numClasses: c.classes,
    embeddingSize: c.dim,
    worldSize: 4,
    globalBatch: c.batch,
    chunk,
  });
  const above = Math.max(...rs.map((r) => r.peakMB - (r.baseMB ?? 0)));
  console.log(
    `  above the process's own ${Math.max(...rs.map((r) => r.baseMB ?? 0)).toFixed(0)} MB: ${above.toFixed(0)} MB; ` +
      `formula: ${(model.total / 2 ** 20).toFixed(0)} MB (state ${(model.state / 2 ** 20).toFixed(0)}, working ${(model.working / 2 ** 20).toFixed(0)})`,
  );
}
