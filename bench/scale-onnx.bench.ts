// ONNX past protobuf's 2 GiB: `mfr export`'s library call on r1200 (the challenge's ResNet1.2K
// teacher, 654 M parameters, 2.6 GB of float32), random weights saved as a checkpoint first. The
// export writes its weights as external data (automatic past 2 GiB), verifies in onnxruntime-node
// (batch 1: one random image, one face), and Python's onnx checker checks the file with its data.
// Time and peak memory of each step. `npm run bench scale-onnx`; BENCH_ONNX_MODEL (r1200),
// BENCH_TMP (the OS's temporary folder). Peak memory about 3x the model: the model, onnxruntime's
// copy, and its prepacked weights. Files are removed at the end.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { saveBackboneCheckpoint } from "../src/models/index.ts";
import { exportCheckpoint } from "../src/export/index.ts";
import { benchBackbone } from "./bench-backbone.ts";

const env = process.env;
const name = env.BENCH_ONNX_MODEL ?? "r1200";
const python = env.BENCH_PYTHON ?? "/usr/bin/python3";
const gb = (b: number): string => `${(b / 1e9).toFixed(2)} GB`;
const peak = (): number => process.resourceUsage().maxRSS * 1024;
const since = (t0: number): string => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

const tmp = mkdtempSync(path.join(env.BENCH_TMP ?? tmpdir(), "mfr-scale-onnx-"));
try {
  let t0 = performance.now();
  const model = benchBackbone(name);
  const params = model.parameters().reduce((n, p) => n + p.numel, 0);
  const ckpt = path.join(tmp, `${name}.safetensors`);
  saveBackboneCheckpoint(ckpt, model);
  model.dispose();
  console.log(
    `${name}: ${(params / 1e6).toFixed(1)} M parameters, checkpoint ${gb(statSync(ckpt).size)} written in ${since(t0)}`,
  );

  t0 = performance.now();
  const out = path.join(tmp, `${name}.onnx`);
  const r = await exportCheckpoint({ checkpoint: ckpt, out, batch: 1, checkMfr: true });
  console.log(
    `export: ${since(t0)} (load, reference forward, lowering, verification), ${out}: ${(r.bytes / 1e3).toFixed(0)} kB` +
      ` + ${r.externalData ? `${path.basename(r.externalData.file)} ${gb(r.externalData.bytes)}` : "no external data"}, peak RSS ${gb(peak())}`,
  );
  for (const c of r.verification ?? [])
    console.log(
      `  onnxruntime vs mfr, ${c.name}: max |d| ${c.maxAbsDiff.toExponential(2)}, min cos ${c.minCosine.toFixed(7)} ${c.ok ? "ok" : "FAIL"}`,
    );
  for (const rule of r.rules ?? [])
    console.log(`  check-mfr ${rule.rule}: ${rule.ok ? "ok" : "FAIL"} (${rule.detail})`);

  t0 = performance.now();
  const script = [
    "import sys, resource, onnx",
    "onnx.checker.check_model(sys.argv[1], full_check=True)",
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)",
  ].join("\n");
  const py = spawnSync(python, ["-c", script, out], { encoding: "utf8" });
  console.log(
    py.status === 0
      ? `onnx.checker.check_model(path, full_check=True): ok in ${since(t0)}, peak RSS ${gb(Number(py.stdout.trim()))}`
      : `onnx checker FAILED: ${py.stderr.trim().split("\n").at(-1)}`,
  );
  if (!r.ok || py.status !== 0) process.exitCode = 1;
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
