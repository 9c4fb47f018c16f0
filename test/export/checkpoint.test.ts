// loadBackboneCheckpoint: mfr's safetensors (layout in the metadata), the trainer's step folders
// ("model." keys beside optimizer state) and run folders, arcface_torch's .pth (layout read off
// the keys).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as T from "../../src/torch/index.ts";
import { loadBackboneCheckpoint, saveBackboneCheckpoint } from "../../src/models/index.ts";
import { mfrForward, randomImages } from "../../src/export/index.ts";
import { maxAbsDiff } from "../helpers/numeric.ts";
import { tinyBackbone, trainerCheckpoint } from "./helpers.ts";

const fixtures = fileURLToPath(new URL("../fixtures/models/", import.meta.url));
let dir = "";
before(() => (dir = mkdtempSync(path.join(tmpdir(), "mfr-ckpt-"))));
after(() => rmSync(dir, { recursive: true, force: true }));

test("safetensors round trip: the metadata names the layout, the weights give the same embeddings", () => {
  const m = tinyBackbone("r18", 5);
  const file = path.join(dir, "r18.safetensors");
  const d = saveBackboneCheckpoint(file, m, { "train.step": "100" });
  assert.deepEqual(d, { backbone: "r18", width: 0.125, numFeatures: 32 });
  const loaded = loadBackboneCheckpoint(file);
  assert.deepEqual(loaded.descriptor, d);
  assert.equal(loaded.metadata["train.step"], "100");
  assert.equal(loaded.model.training, false);
  const x = randomImages(2);
  const a = mfrForward(m, x, 2);
  const b = mfrForward(loaded.model, x, 2);
  assert.deepEqual(Array.from(a), Array.from(b));
  m.dispose();
  loaded.model.dispose();
});

test("a trainer checkpoint folder: backbone.safetensors with model.* keys and optimizer state", () => {
  const m = tinyBackbone("mbf", 2);
  const step = path.join(dir, "step-00000010");
  trainerCheckpoint(step, m);
  const loaded = loadBackboneCheckpoint(step);
  assert.deepEqual(loaded.descriptor, { backbone: "mbf", width: 0.125, numFeatures: 32 });
  const x = randomImages(1);
  assert.deepEqual(Array.from(mfrForward(loaded.model, x, 1)), Array.from(mfrForward(m, x, 1)));
  m.dispose();
  loaded.model.dispose();
});

test("a run folder means its newest complete checkpoint; without one it is an error naming it", () => {
  const run = path.join(dir, "run");
  const older = tinyBackbone("r18", 3);
  const newer = tinyBackbone("r18", 4);
  trainerCheckpoint(path.join(run, "checkpoints", "step-00000005"), older);
  trainerCheckpoint(path.join(run, "checkpoints", "step-00000010"), newer);
  // A newer step whose manifest was never written is not complete: it is passed over.
  mkdirSync(path.join(run, "checkpoints", "step-00000015"));
  const loaded = loadBackboneCheckpoint(run);
  const x = randomImages(1);
  assert.deepEqual(Array.from(mfrForward(loaded.model, x, 1)), Array.from(mfrForward(newer, x, 1)));
  const empty = path.join(dir, "empty-run");
  mkdirSync(path.join(empty, "checkpoints"), { recursive: true });
  assert.throws(() => loadBackboneCheckpoint(empty), /empty-run: a run folder without a complete checkpoint/);
  for (const m of [older, newer, loaded.model]) m.dispose();
});

for (const [kind, want] of [
  ["iresnet", { backbone: "[1,2,1,1]", width: 0.125, numFeatures: 32 }],
  ["mbf", { backbone: "mbf", width: 0.125, numFeatures: 32 }],
] as const) {
  test(`arcface_torch .pth (${kind}): the layout is read off the keys, PyTorch's embeddings come out`, () => {
    const loaded = loadBackboneCheckpoint(path.join(fixtures, `tiny_${kind}.pth`));
    assert.equal(loaded.format, "pth");
    assert.deepEqual(loaded.descriptor, want);
    T.scope(() => {
      const x = T.loadNpy(path.join(fixtures, "input.npy"));
      const got = T.noGrad(() => loaded.model.forward(x));
      const ref = T.loadNpy(path.join(fixtures, `tiny_${kind}_emb.npy`));
      assert.ok(maxAbsDiff(got, ref) <= 1e-4);
    });
    loaded.model.dispose();
  });
}

test("errors name the file and the layout tried", () => {
  const pth = path.join(fixtures, "tiny_iresnet.pth");
  assert.throws(
    () => loadBackboneCheckpoint(pth, { backbone: "r34" }),
    (e: Error) => {
      assert.match(e.message, /tiny_iresnet\.pth: does not fit r34 at width 0\.125/);
      return true;
    },
  );
  assert.throws(
    () => loadBackboneCheckpoint(path.join(dir, "missing.safetensors")),
    /missing\.safetensors: no such checkpoint/,
  );
  const other = path.join(dir, "other.safetensors");
  const t = T.zeros([2]);
  T.saveSafetensors(other, { "encoder.weight": t });
  t.dispose();
  assert.throws(() => loadBackboneCheckpoint(other), /not a known backbone state dict/);
});
