// A backbone checkpoint's metadata is a claim of the file: a layout that cannot fit the weights it
// carries (an r50's, or a tiny test model's, labelled "r1200") is refused before it is built.
// Its own file: the process's peak RSS then shows that no multi-GB backbone was allocated.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as T from "../../src/torch/index.ts";
import {
  backboneCost,
  buildBackbone,
  loadBackboneCheckpoint,
  saveBackboneCheckpoint,
} from "../../src/models/index.ts";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "../..");
const dir = mkdtempSync(path.join(tmpdir(), "mfr-claims-"));

/** A tiny r18 saved with its own metadata, then the same weights with `claims` over it. */
function relabelled(claims: Record<string, string>): { file: string; values: number } {
  T.manualSeed(3);
  const m = buildBackbone("r18", { width: 1 / 8, numFeatures: 32 });
  const honest = path.join(dir, "honest.safetensors");
  saveBackboneCheckpoint(honest, m);
  const { tensors, metadata } = T.loadSafetensors(honest);
  const file = path.join(dir, "claims.safetensors");
  T.saveSafetensors(file, tensors, { ...metadata, ...claims });
  const values = [...tensors.values()].reduce((a, t) => a + t.numel, 0);
  for (const t of tensors.values()) t.dispose();
  // The honest file loads: the check does not refuse a layout that fits.
  loadBackboneCheckpoint(honest).model.dispose();
  m.dispose();
  return { file, values };
}

test("metadata claiming r1200 on a tiny r18's weights is refused before that model is built", () => {
  const { file, values } = relabelled({
    "mfr.backbone": "r1200",
    "mfr.width": "1",
    "mfr.num_features": "512",
  });
  const params = backboneCost("r1200", { width: 1, numFeatures: 512 }).params;
  assert.ok(params * 4 > 2.5e9, `r1200 has ${params} parameters`); // 2.6 GB of f32 weights alone
  assert.throws(() => loadBackboneCheckpoint(file), {
    message:
      `${file}: does not fit r1200 at width 1 with 512-d embeddings (from its metadata): ` +
      `that layout has ${params} parameters, the file holds ${values} values`,
  });
  const peakMB = process.resourceUsage().maxRSS / 1024;
  assert.ok(peakMB < 2000, `peak RSS ${peakMB.toFixed(0)} MB`);
});

test("mfr export on such a checkpoint exits non-zero, naming the file and the claimed layout", () => {
  const { file } = relabelled({ "mfr.backbone": "r1200", "mfr.width": "1" });
  const r = spawnSync(
    process.execPath,
    ["bin/mfr.js", "export", "--model", file, "--out", path.join(dir, "x.onnx"), "--no-verify"],
    { cwd: root, encoding: "utf8", timeout: 120_000 },
  );
  assert.equal(r.signal, null, "killed: it did not finish by itself");
  assert.equal(r.status, 1, r.stderr);
  assert.match(
    r.stderr,
    /claims\.safetensors: does not fit r1200 at width 1 .*that layout has \d+ parameters/,
  );
});
