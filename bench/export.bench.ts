// Single-thread CPU latency at batch 1 (the challenge's budget: 1000 ms for detection plus
// recognition on CPU) of r50 and r100: the exported ONNX in onnxruntime-node before and after
// BatchNorm folding, and mfr's libtorch eval forward for comparison. onnxruntime's own graph
// optimisations (level "all", its default) already fuse Conv+BatchNormalization, so each ONNX file
// also runs with them disabled: that row shows what folding in the file itself buys a runtime that
// does not fuse. The configurations alternate run by run, so drift in machine load hits all alike;
// medians (and the spread, p10–p90) are reported.
// Standalone: `node --import tsx bench/export.bench.ts` (or `npm run bench export`). Knobs:
// BENCH_MODELS (r50,r100), BENCH_ROUNDS (9), BENCH_WARMUP (2). Writes bench/out/export.json.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as T from "../src/torch/index.ts";
import { type Backbone, foldBatchNorm } from "../src/models/index.ts";
import { benchBackbone } from "./bench-backbone.ts";
import {
  type GraphOptimization,
  OnnxSession,
  backboneToOnnx,
  compareEmbeddings,
  mfrForward,
  syntheticFaces,
} from "../src/export/index.ts";

const env = process.env;
const models = (env.BENCH_MODELS ?? "r50,r100").split(",");
const rounds = Number(env.BENCH_ROUNDS ?? 9);
const warmup = Number(env.BENCH_WARMUP ?? 2);
const here = path.dirname(fileURLToPath(import.meta.url));

T.setNumThreads(1);

interface Config {
  name: string;
  run: () => Promise<void>;
  times: number[];
}

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))]!;
};

const results: Record<string, unknown>[] = [];
const x = syntheticFaces(1);

for (const name of models) {
  const t0 = performance.now();
  const model = benchBackbone(name);
  const unfolded = backboneToOnnx(model, { batch: 1 });
  const reference = mfrForward(model, x, 1);
  const mfrUnfolded = T.tensor(x, { shape: [1, 3, 112, 112] }).keep();
  // libtorch forward timings of the unfolded model have to be taken before folding it, so the
  // folded model is a second copy.
  const folded = benchBackbone(name);
  foldBatchNorm(folded);
  const foldedOnnx = backboneToOnnx(folded, { batch: 1 });
  const prep = (performance.now() - t0) / 1000;

  const sessions: { label: string; s: OnnxSession }[] = [];
  for (const [label, bytes] of [
    ["onnx", unfolded.bytes],
    ["onnx, folded", foldedOnnx.bytes],
  ] as const) {
    for (const opt of ["all", "disabled"] as GraphOptimization[]) {
      const s = await OnnxSession.open(bytes, { threads: 1, optimization: opt });
      sessions.push({ label: `${label}, ort opt ${opt}`, s });
    }
  }
  const agreement = [];
  for (const { label, s } of sessions) {
    const { data } = await s.run(x, [1, 3, 112, 112]);
    agreement.push({ label, ...compareEmbeddings(data, reference, reference.length) });
  }
  const forward = (m: Backbone) => async () => {
    T.scope(() => T.noGrad(() => m.forward(mfrUnfolded).dispose()));
  };
  const configs: Config[] = [
    ...sessions.map(({ label, s }) => ({
      name: `${name} ${label}`,
      run: async () => void (await s.run(x, [1, 3, 112, 112])),
      times: [],
    })),
    { name: `${name} mfr libtorch eval forward`, run: forward(model), times: [] },
    { name: `${name} mfr libtorch eval forward, folded`, run: forward(folded), times: [] },
  ];
  for (let r = 0; r < warmup + rounds; r++) {
    // Rotate the starting configuration each round.
    for (let k = 0; k < configs.length; k++) {
      const c = configs[(r + k) % configs.length]!;
      const s = performance.now();
      await c.run();
      if (r >= warmup) c.times.push(performance.now() - s);
    }
  }
  console.log(
    `\n${name}: ${(model.numParameters() / 1e6).toFixed(1)} M params, ONNX ${unfolded.info.nodes} nodes ` +
      `(${foldedOnnx.info.nodes} folded), prepared in ${prep.toFixed(1)} s; batch 1, 1 thread, ${rounds} runs each`,
  );
  const w = Math.max(...configs.map((c) => c.name.length));
  for (const c of configs) {
    const med = quantile(c.times, 0.5);
    console.log(
      `  ${c.name.padEnd(w)}  median ${med.toFixed(1).padStart(7)} ms   p10–p90 ${quantile(c.times, 0.1).toFixed(1)}–${quantile(c.times, 0.9).toFixed(1)} ms`,
    );
    results.push({
      model: name,
      config: c.name,
      medianMs: med,
      p10Ms: quantile(c.times, 0.1),
      p90Ms: quantile(c.times, 0.9),
      runs: c.times,
    });
  }
  for (const a of agreement)
    console.log(
      `  agreement ${a.label}: max|d| ${a.maxAbsDiff.toExponential(2)} (outputs up to ${a.maxAbs.toFixed(2)}), cos ${a.minCosine.toFixed(8)}`,
    );
  for (const { s } of sessions) await s.close();
  mfrUnfolded.dispose();
  model.dispose();
  folded.dispose();
}

mkdirSync(path.join(here, "out"), { recursive: true });
writeFileSync(
  path.join(here, "out", "export.json"),
  JSON.stringify({ threads: 1, batch: 1, rounds, results }, null, 2) + "\n",
);
console.log(`\nwrote bench/out/export.json`);
