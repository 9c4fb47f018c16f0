// Forward + backward images/s of a backbone (r50, batch 32 by default) in mfr and in PyTorch
// eager (Debian's python3-torch: the same libtorch), same threads, same session. The two sides
// alternate iteration by iteration (who goes first alternates too), so drift in machine load
// hits both alike; medians are reported, of wall time and of process CPU time.
// Standalone: `node --import tsx bench/models.bench.ts` (or `npm run bench models`). Knobs:
// BENCH_MODEL (r50), BENCH_BATCH (32), BENCH_ROUNDS (5), BENCH_THREADS (all cores),
// BENCH_PYTHON (/usr/bin/python3). Writes bench/out/models.json.
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import * as T from "../src/torch/index.ts";
import { buildBackbone, resolvePreset } from "../src/models/index.ts";

const env = process.env;
const model = env.BENCH_MODEL ?? "r50";
const batch = Number(env.BENCH_BATCH ?? 32);
const rounds = Number(env.BENCH_ROUNDS ?? 5);
const threads = Number(env.BENCH_THREADS ?? availableParallelism());
const python = env.BENCH_PYTHON ?? "/usr/bin/python3";
const here = path.dirname(fileURLToPath(import.meta.url));

const preset = resolvePreset(model);
if (preset.family !== "iresnet")
  throw new Error(`BENCH_MODEL: the PyTorch side mirrors iResNets only, got ${model}`);

interface Timing {
  seconds: number;
  cpu: number;
}

/** The PyTorch side: a child process that times one iteration per request. */
function torchSide(): { ask: (msg: object) => Promise<Record<string, unknown>>; close: () => void } {
  const child = spawn(python, [path.join(here, "models_torch.py")], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    async ask(msg) {
      child.stdin.write(JSON.stringify(msg) + "\n");
      const r = await lines.next();
      if (r.done) throw new Error("the PyTorch side exited");
      return JSON.parse(r.value as string) as Record<string, unknown>;
    },
    close: () => child.stdin.end(),
  };
}

async function torchStep(py: ReturnType<typeof torchSide>): Promise<Timing> {
  const r = (await py.ask({ run: 1 })) as { seconds: number[]; cpu: number[] };
  return { seconds: r.seconds[0]!, cpu: r.cpu[0]! };
}

function mfrSide(): { params: number; step: () => Timing } {
  T.manualSeed(0);
  const net = buildBackbone(model);
  const x = T.randn([batch, 3, 112, 112]).keep();
  return {
    params: net.numParameters(),
    step() {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      T.scope(() => {
        net.zeroGrad();
        net.forward(x).square().mean().backward();
      });
      const c = process.cpuUsage(c0);
      return { seconds: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6 };
    },
  };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

T.setNumThreads(threads);
const py = torchSide();
const ready = await py.ask({ threads, blocks: preset.blocks, batch });
const mine = mfrSide();
if (ready.params !== mine.params)
  throw new Error(`parameter counts differ: mfr ${mine.params}, PyTorch ${ready.params}`);
console.log(
  `${model} forward+backward, batch ${batch}, ${threads} threads, ${rounds} rounds (+1 warm-up each side)`,
);
mine.step();
await torchStep(py);
const t: { mfr: Timing[]; torch: Timing[] } = { mfr: [], torch: [] };
for (let r = 0; r < rounds; r++) {
  if (r % 2 === 0) {
    t.mfr.push(mine.step());
    t.torch.push(await torchStep(py));
  } else {
    t.torch.push(await torchStep(py));
    t.mfr.push(mine.step());
  }
  const [a, b] = [t.mfr.at(-1)!, t.torch.at(-1)!];
  console.log(
    `round ${r + 1}: mfr ${(batch / a.seconds).toFixed(2)} img/s (cpu ${a.cpu.toFixed(1)} s), ` +
      `PyTorch ${(batch / b.seconds).toFixed(2)} img/s (cpu ${b.cpu.toFixed(1)} s)`,
  );
}
py.close();
const med = (side: "mfr" | "torch", k: keyof Timing): number => median(t[side].map((x) => x[k]));
const result = {
  model,
  batch,
  threads,
  rounds,
  mfrImagesPerSec: batch / med("mfr", "seconds"),
  torchImagesPerSec: batch / med("torch", "seconds"),
  ratio: med("torch", "seconds") / med("mfr", "seconds"),
  ratioCpuTime: med("torch", "cpu") / med("mfr", "cpu"),
  /** Per round, PyTorch's time over mfr's: the pairing cancels slow drift in machine load. */
  ratioPairedMedian: median(t.mfr.map((m, i) => t.torch[i]!.seconds / m.seconds)),
  timings: t,
};
console.log(
  `median: mfr ${result.mfrImagesPerSec.toFixed(2)} img/s, PyTorch ${result.torchImagesPerSec.toFixed(2)} img/s, ` +
    `ratio ${result.ratio.toFixed(3)}x (paired ${result.ratioPairedMedian.toFixed(3)}x, CPU time ` +
    `${result.ratioCpuTime.toFixed(3)}x; goal >= 1.0)`,
);
mkdirSync(path.join(here, "out"), { recursive: true });
writeFileSync(path.join(here, "out", "models.json"), JSON.stringify(result, null, 2) + "\n");
