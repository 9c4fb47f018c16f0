// Exact TPR@FPR over all pairs at scale: N = 50 000 x 512 (1.25 billion pairs, four subsets),
// wall time and peak memory, the fraction of this machine's float32 GEMM rate the scoring keeps,
// and numpy + sklearn-style ROC (sort every pair score) side by side on a smaller N.
// `npm run bench eval`, or `node --import tsx bench/eval.bench.ts`.
// Last, the challenge's size: N = 81 250 x 512 (3.3 billion pairs, as the MFR challenge's test set
// has), in this one process: time and peak memory.
// Knobs: BENCH_EVAL_N (50000), BENCH_EVAL_DIM (512), BENCH_EVAL_BLOCK (2048), BENCH_EVAL_NUMPY_N
// (12000; 0 skips numpy), BENCH_EVAL_CHALLENGE_N (81250; 0 skips it), BENCH_THREADS (all cores),
// BENCH_PYTHON (/usr/bin/python3).
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { availableParallelism, freemem, loadavg, totalmem } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as T from "../src/torch/index.ts";
import { startedWithHeapEnv } from "../src/torch/heap.ts";
import { evaluatePairs, evaluationJson, type PairEvaluation } from "../src/eval/index.ts";

const env = process.env;
const N = Number(env.BENCH_EVAL_N ?? 50_000);
const DIM = Number(env.BENCH_EVAL_DIM ?? 512);
const BLOCK = Number(env.BENCH_EVAL_BLOCK ?? 2048);
const NUMPY_N = Number(env.BENCH_EVAL_NUMPY_N ?? 12_000);
const CHALLENGE_N = Number(env.BENCH_EVAL_CHALLENGE_N ?? 81_250);
const threads = Number(env.BENCH_THREADS ?? availableParallelism());
const python = env.BENCH_PYTHON ?? "/usr/bin/python3";
const FPRS = ["1e-6", "1e-5", "1e-4"];
const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(here, "out");

T.setNumThreads(threads);
T.manualSeed(0);

/** 10 images per identity, half of them masked (noisier), rows grouped by identity. */
function synthetic(n: number) {
  const labels = Int32Array.from({ length: n }, (_, i) => Math.floor(i / 10));
  const groups = Uint8Array.from({ length: n }, (_, i) => i % 2);
  const embeddings = T.scope(() => {
    const ids = T.randn([Math.ceil(n / 10), DIM]);
    const noise = T.randn([n, DIM]).mul(
      T.tensor(
        Float32Array.from(groups, (g) => (g ? 2.2 : 1.7)),
        { shape: [n, 1] },
      ),
    );
    return T.normalize(ids.indexSelect(0, T.tensor(labels).to("i64")).add(noise)).keep();
  });
  return { embeddings, labels, groups };
}

const cpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/**
 * oneDNN's float32 GEMM on the block shape with no post-processing: the machine's rate. The
 * machine is shared and its load drifts, so besides runs before and after, the evaluation is
 * probed between blocks (every PROBE_EVERY-th block one bare product, timed and then subtracted
 * from the evaluation's time): the fraction compares rates measured under the same load.
 */
class GemmProbe {
  readonly wall: number[] = [];
  readonly cpu: number[] = [];
  spentWall = 0;
  spentCpu = 0;
  readonly #a: T.Tensor;
  readonly #b: T.Tensor;
  readonly #linear = T.opId("aten::mkldnn_linear");
  constructor(x: T.Tensor) {
    const toMkldnn = T.opId("aten::to_mkldnn");
    [this.#a, this.#b] = [0, 1].map((i) =>
      T.wrap(T.callOp(toMkldnn, x.narrow(0, i * BLOCK, BLOCK).contiguous(), null)).keep(),
    ) as [T.Tensor, T.Tensor];
  }
  run(): void {
    const t0 = performance.now();
    const c0 = cpuSeconds();
    // The product is freed inside the scope: returned from it, it would live on until a GC, and
    // each probe would write fresh memory (page faults, ~4x the product's time on these VMs).
    T.scope(() => {
      T.wrap(T.callOp(this.#linear, this.#a, this.#b, null));
    });
    const w = (performance.now() - t0) / 1000;
    const c = cpuSeconds() - c0;
    this.wall.push(w);
    this.cpu.push(c);
    this.spentWall += w;
    this.spentCpu += c;
  }
  /** Median GFLOP/s per wall second and per CPU second. */
  rate(from = 0): { wall: number; cpu: number } {
    const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[xs.length >> 1]!;
    const flops = 2 * BLOCK * BLOCK * DIM;
    return {
      wall: flops / median(this.wall.slice(from)) / 1e9,
      cpu: flops / median(this.cpu.slice(from)) / 1e9,
    };
  }
  /**
   * GFLOP/s over all the probes together (their total time): under load the times have a long
   * tail (a thread waiting for a core), which the evaluation's total time carries too and the
   * median leaves out.
   */
  meanRate(from = 0): { wall: number; cpu: number } {
    const flops = 2 * BLOCK * BLOCK * DIM;
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    const n = this.wall.length - from;
    return {
      wall: (n * flops) / sum(this.wall.slice(from)) / 1e9,
      cpu: (n * flops) / sum(this.cpu.slice(from)) / 1e9,
    };
  }
}
const PROBE_EVERY = 8;

async function runMfr(input: ReturnType<typeof synthetic>, probe?: GemmProbe) {
  let peakRss = process.memoryUsage().rss;
  const before = peakRss;
  const t0 = performance.now();
  const c0 = cpuSeconds();
  const ev = await evaluatePairs(input, {
    fpr: FPRS,
    blockSize: BLOCK,
    onProgress: (p) => {
      peakRss = Math.max(peakRss, process.memoryUsage.rss());
      if (probe && p.done % PROBE_EVERY === 0) probe.run();
    },
  });
  const seconds = (performance.now() - t0) / 1000 - (probe?.spentWall ?? 0);
  const cpu = cpuSeconds() - c0 - (probe?.spentCpu ?? 0);
  return { ev, seconds, cpu, peakRss, rssGrowth: peakRss - before };
}

function runNumpy(input: ReturnType<typeof synthetic>, m: number) {
  fs.mkdirSync(out, { recursive: true });
  const files = ["e", "l", "g"].map((f) => path.join(out, `eval-numpy-${f}.npy`)) as [string, string, string];
  T.scope(() => {
    T.saveNpy(files[0], input.embeddings.narrow(0, 0, m));
    T.saveNpy(files[1], T.tensor(input.labels.subarray(0, m)).to("i64"));
    T.saveNpy(files[2], T.tensor(input.groups.subarray(0, m)));
  });
  const r = spawnSync(python, [path.join(here, "eval_numpy.py"), ...files, FPRS.join(",")], {
    encoding: "utf8",
    maxBuffer: 1 << 20,
  });
  for (const f of files) fs.rmSync(f, { force: true });
  if (r.status !== 0) throw new Error(`numpy side failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as {
    seconds: number;
    gemmSeconds: number;
    rocSeconds: number;
    peakRssBytes: number;
    subsets: PairEvaluation["subsets"];
  };
}

const gb = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
const pairsOf = (n: number) => (n * (n - 1)) / 2;

const input = synthetic(N);
const load0 = loadavg()[0]!;
const probe = new GemmProbe(input.embeddings);
for (let i = 0; i < 4; i++) probe.run();
const rateBefore = probe.rate(1);
const warm = probe.wall.length;
const big = await runMfr(input, probe);
const during = probe.rate(warm);
const duringMean = probe.meanRate(warm);
const flops = 2 * pairsOf(N) * DIM;
const fracWall = flops / big.seconds / 1e9 / during.wall;
const fracCpu = flops / big.cpu / 1e9 / during.cpu;
const fracMean = {
  wall: flops / big.seconds / 1e9 / duringMean.wall,
  cpu: flops / big.cpu / 1e9 / duringMean.cpu,
};
const heap = startedWithHeapEnv()
  ? `heap: ${process.env.GLIBC_TUNABLES ?? "glibc defaults"}`
  : "heap: started without mfr's settings (run it through npm run bench), so fresh pages fault at 4 KiB";
console.log(
  `mfr eval, N = ${N} x ${DIM} (${(pairsOf(N) / 1e9).toFixed(3)} G pairs), ${threads} threads, ${heap}`,
);
console.log(
  `  wall ${big.seconds.toFixed(1)} s, CPU ${big.cpu.toFixed(1)} s, peak RSS ${gb(big.peakRss)} (+${gb(big.rssGrowth)} during eval), ` +
    `passes ${big.ev.info.passes.join("+")}, load average ${load0.toFixed(1)} -> ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores`,
);
console.log(
  `  phases (s) ${JSON.stringify(big.ev.info.seconds, (_k, v: unknown) => (typeof v === "number" ? Number(v.toFixed(2)) : v))}`,
);
console.log(
  `  float32 GEMM (oneDNN, ${BLOCK}x${DIM} by ${DIM}x${BLOCK}), GFLOP/s per wall s / per CPU s: ` +
    `before ${rateBefore.wall.toFixed(1)} / ${rateBefore.cpu.toFixed(1)}, ` +
    `during (median of ${probe.wall.length - warm} probes between blocks) ${during.wall.toFixed(1)} / ${during.cpu.toFixed(1)}, ` +
    `over their total time ${duringMean.wall.toFixed(1)} / ${duringMean.cpu.toFixed(1)}`,
);
console.log(
  `  scoring: ${(flops / big.seconds / 1e9).toFixed(1)} / ${(flops / big.cpu / 1e9).toFixed(1)} GFLOP/s = ` +
    `${fracWall.toFixed(3)} of the GEMM rate by wall time, ${fracCpu.toFixed(3)} by CPU time ` +
    `(against the probes' total time: ${fracMean.wall.toFixed(3)} / ${fracMean.cpu.toFixed(3)})`,
);
console.log(`  ${evaluationJson(big.ev)}`);

const report: Record<string, unknown> = {
  n: N,
  dim: DIM,
  block: BLOCK,
  threads,
  heap,
  pairs: pairsOf(N),
  loadAverage: [load0, loadavg()[0]],
  mfr: {
    seconds: big.seconds,
    cpuSeconds: big.cpu,
    peakRssBytes: big.peakRss,
    rssGrowthBytes: big.rssGrowth,
    phases: big.ev.info.seconds,
  },
  gemmGflops: {
    before: rateBefore,
    during,
    duringOverTotalTime: duringMean,
    probes: probe.wall.length - warm,
  },
  fractionOfGemm: { wall: fracWall, cpu: fracCpu, againstTotalProbeTime: fracMean },
  result: JSON.parse(evaluationJson(big.ev)) as unknown,
};

if (NUMPY_N > 0) {
  // numpy needs ~100 bytes per pair (scores, labels, argsort, cumulative counts): stay within
  // half of the memory free now, since the machine is shared.
  const m = Math.min(NUMPY_N, N, Math.floor(Math.sqrt(freemem() / 100)));
  const sub = {
    embeddings: input.embeddings.narrow(0, 0, m),
    labels: input.labels.subarray(0, m),
    groups: input.groups.subarray(0, m),
  };
  const small = await runMfr(sub);
  const np = runNumpy(input, m);
  // numpy's footprint grows with the pairs; the largest N whose peak fits in this machine's memory:
  const perPair = np.peakRssBytes / pairsOf(m);
  const nMax = Math.floor(Math.sqrt((2 * totalmem()) / perPair));
  console.log(`\nside by side, N = ${m} (${(pairsOf(m) / 1e6).toFixed(1)} M pairs)`);
  console.log(
    `  mfr:   ${small.seconds.toFixed(1)} s (CPU ${small.cpu.toFixed(1)} s), RSS +${gb(small.rssGrowth)} during eval ` +
      `(process peak ${gb(small.peakRss)}, holding the N = ${N} set too)`,
  );
  console.log(
    `  numpy: ${np.seconds.toFixed(1)} s (GEMM ${np.gemmSeconds.toFixed(1)} s, sort-based ROC ${np.rocSeconds.toFixed(1)} s), ` +
      `peak RSS ${gb(np.peakRssBytes)} (${perPair.toFixed(1)} B/pair: N <= ~${nMax} fits ${gb(totalmem())}, ${gb(freemem())} free now)`,
  );
  for (const name of Object.keys(np.subsets) as (keyof PairEvaluation["subsets"])[]) {
    const a = small.ev.subsets[name]!;
    const b = np.subsets[name]!;
    const cells = FPRS.map(
      (k) =>
        `${k}: ${a.tpr[k]?.toFixed(5)} / ${b.tpr[k]?.toFixed(5)} (τ ${a.threshold[k]} / ${b.threshold[k]})`,
    );
    console.log(`  ${name.padEnd(18)} TPR mfr / numpy  ${cells.join("  ")}`);
  }
  report.sideBySide = {
    n: m,
    mfr: {
      seconds: small.seconds,
      cpuSeconds: small.cpu,
      rssGrowthBytes: small.rssGrowth,
      subsets: small.ev.subsets,
    },
    numpy: { ...np, bytesPerPair: perPair, largestNFitting: nMax },
  };
}

if (CHALLENGE_N > 0) {
  input.embeddings.dispose();
  const big = synthetic(CHALLENGE_N);
  const r = await runMfr(big);
  big.embeddings.dispose();
  const peak = process.resourceUsage().maxRSS * 1024;
  console.log(
    `\nthe challenge's size, N = ${CHALLENGE_N} x ${DIM} (${(pairsOf(CHALLENGE_N) / 1e9).toFixed(2)} G pairs), one process, ${threads} threads:`,
  );
  console.log(
    `  wall ${r.seconds.toFixed(1)} s, CPU ${r.cpu.toFixed(1)} s, RSS +${gb(r.rssGrowth)} during eval, ` +
      `process peak RSS ${gb(peak)}, passes ${r.ev.info.passes.join("+")}`,
  );
  console.log(`  ${evaluationJson(r.ev)}`);
  report.challenge = {
    n: CHALLENGE_N,
    pairs: pairsOf(CHALLENGE_N),
    seconds: r.seconds,
    cpuSeconds: r.cpu,
    rssGrowthBytes: r.rssGrowth,
    processPeakRssBytes: peak,
    result: JSON.parse(evaluationJson(r.ev)) as unknown,
  };
}

fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(path.join(out, "eval.json"), JSON.stringify(report, null, 1) + "\n");
console.log(`\nwritten ${path.relative(process.cwd(), path.join(out, "eval.json"))}`);
