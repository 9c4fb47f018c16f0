// ONNX past protobuf's 2 GiB: `mfr export`'s library call on r1200 (the challenge's ResNet1.2K
// teacher, 654 M parameters, 2.6 GB of float32), from a checkpoint of random weights. The export
// writes its weights as external data (automatic past 2 GiB); onnxruntime-node runs the file
// against mfr's own embeddings (batch 1: one random image, one face); Python's onnx checker checks
// the file with its data. Each step runs in its own process, one after another, so that each
// one's peak memory is its own (the model is 2.6 GB; no step holds two copies of it besides the
// checkpoint load). `npm run bench scale-onnx`; BENCH_ONNX_MODEL (r1200), BENCH_TMP.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { saveBackboneCheckpoint } from "../src/models/index.ts";
import {
  DEFAULT_TOLERANCE,
  exportCheckpoint,
  mfrForward,
  randomImages,
  syntheticFaces,
  verifyOnnx,
} from "../src/export/index.ts";
import { benchBackbone } from "./bench-backbone.ts";

const env = process.env;
const name = env.BENCH_ONNX_MODEL ?? "r1200";
const python = env.BENCH_PYTHON ?? "/usr/bin/python3";
const here = fileURLToPath(import.meta.url);
const gb = (b: number): string => `${(b / 1e9).toFixed(2)} GB`;
const peak = (): number => process.resourceUsage().maxRSS * 1024;
const inputs = (): { name: string; images: Float32Array }[] => [
  { name: "random", images: randomImages(1, 7) },
  { name: "synthetic face", images: syntheticFaces(1, 3) },
];

/** The steps, each run in a child: `--step NAME TMP`; each prints one JSON line. */
async function step(which: string, tmp: string): Promise<Record<string, unknown>> {
  const ckpt = path.join(tmp, `${name}.safetensors`);
  const out = path.join(tmp, `${name}.onnx`);
  const refs = path.join(tmp, "expected.json");
  const t0 = performance.now();
  const seconds = (): number => (performance.now() - t0) / 1000;
  if (which === "make") {
    const model = benchBackbone(name, 0.05);
    const params = model.parameters().reduce((n, p) => n + p.numel, 0);
    const expected = inputs().map((c) => Array.from(mfrForward(model, c.images, 1)));
    if (!expected.flat().every(Number.isFinite))
      throw new Error("the random model's embeddings are not finite");
    writeFileSync(refs, JSON.stringify(expected));
    saveBackboneCheckpoint(ckpt, model);
    return { params, bytes: statSync(ckpt).size, seconds: seconds(), peakRss: peak() };
  }
  if (which === "export") {
    const r = await exportCheckpoint({ checkpoint: ckpt, out, batch: 1, verify: false, checkMfr: true });
    rmSync(ckpt);
    return {
      onnxBytes: r.bytes,
      data: r.externalData,
      rules: r.rules?.every((x) => x.ok),
      seconds: seconds(),
      peakRss: peak(),
    };
  }
  const expected = JSON.parse(readFileSync(refs, "utf8")) as number[][];
  const cases = inputs().map((c, i) => ({ ...c, n: 1, expected: Float32Array.from(expected[i]!) }));
  const results = await verifyOnnx(out, cases, DEFAULT_TOLERANCE, { optimization: "disabled" });
  return { results, seconds: seconds(), peakRss: peak() };
}

function child(which: string, tmp: string): Record<string, unknown> {
  const r = spawnSync(process.execPath, ["--import", "tsx", here, "--step", which, tmp], {
    encoding: "utf8",
    maxBuffer: 1 << 24,
  });
  if (r.status !== 0) throw new Error(`step ${which} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as Record<string, unknown>;
}

const args = process.argv.slice(2);
if (args[0] === "--step") console.log(JSON.stringify(await step(args[1]!, args[2]!)));
else {
  const tmp = mkdtempSync(path.join(env.BENCH_TMP ?? tmpdir(), "mfr-scale-onnx-"));
  try {
    const m = child("make", tmp);
    console.log(
      `${name}: ${((m.params as number) / 1e6).toFixed(1)} M parameters, reference embeddings and a ` +
        `${gb(m.bytes as number)} checkpoint in ${(m.seconds as number).toFixed(1)} s, peak RSS ${gb(m.peakRss as number)}`,
    );
    const e = child("export", tmp);
    const data = e.data as { file: string; bytes: number } | undefined;
    console.log(
      `export (load the checkpoint, lower, stream the weights out): ${(e.seconds as number).toFixed(1)} s, ` +
        `${name}.onnx ${((e.onnxBytes as number) / 1e3).toFixed(0)} kB + ` +
        `${data ? `${path.basename(data.file)} ${gb(data.bytes)}` : "NO external data"}, ` +
        `check-mfr ${e.rules ? "ok" : "FAILED"}, peak RSS ${gb(e.peakRss as number)}`,
    );
    const v = child("verify", tmp);
    const results = v.results as { name: string; maxAbsDiff: number; minCosine: number; ok: boolean }[];
    console.log(
      `onnxruntime-node (graph optimisations off) vs mfr: ${(v.seconds as number).toFixed(1)} s, peak RSS ${gb(v.peakRss as number)}`,
    );
    for (const c of results)
      console.log(
        `  ${c.name}: max |d| ${c.maxAbsDiff.toExponential(2)}, min cos ${c.minCosine.toFixed(7)} ${c.ok ? "ok" : "FAIL"}`,
      );
    const t0 = performance.now();
    const script = [
      "import sys, resource, onnx",
      "onnx.checker.check_model(sys.argv[1], full_check=True)",
      "m = onnx.load(sys.argv[1])",
      "print(len(m.graph.initializer), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)",
    ].join("\n");
    const py = spawnSync(python, ["-c", script, path.join(tmp, `${name}.onnx`)], { encoding: "utf8" });
    const [inits, rss] = py.stdout.trim().split(" ").map(Number);
    console.log(
      py.status === 0
        ? `python onnx: check_model(path, full_check=True) and load with its data (${inits} initialisers): ok in ` +
            `${((performance.now() - t0) / 1000).toFixed(1)} s, peak RSS ${gb(rss!)}`
        : `onnx checker FAILED: ${py.stderr.trim().split("\n").at(-1)}`,
    );
    if (!data || !e.rules || !results.every((c) => c.ok) || py.status !== 0) process.exitCode = 1;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
