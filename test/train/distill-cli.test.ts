// Distillation as users run it: `mfr train` a teacher, then a smaller-embedding student with
// `distill` pointing at the teacher's run folder (online), resumed (its projection comes back from
// the checkpoint, and export-side loading ignores it); `mfr distill features` writes a store that
// `mfr train` reads in mode "features".
import { before, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { synthesizeDataset } from "../../src/data/index.ts";
import { loadBackboneCheckpoint } from "../../src/models/index.ts";
import { listCheckpoints } from "../../src/train/index.ts";
import { mfrSync, tinyTrainConfig } from "../helpers/mfr.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-distill-cli-"));
const data = path.join(tmp, "data");
const teacherRun = path.join(tmp, "teacher");

interface Line {
  step: number;
  loss: number;
  ce?: number;
  distill?: number;
}
const metrics = (run: string): Line[] =>
  fs
    .readFileSync(path.join(run, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Line);

function assertDistilled(lines: Line[], lambda: number): void {
  for (const l of lines) {
    assert.ok(l.ce !== undefined && l.distill !== undefined, JSON.stringify(l));
    assert.ok(Math.abs(l.loss - (l.ce + lambda * l.distill)) < 1e-4 * l.loss, JSON.stringify(l));
  }
}

before(async () => {
  await synthesizeDataset({ out: data, identities: 5, imagesPerIdentity: 4, seed: 7 });
  const cfg = tinyTrainConfig(tmp, data, teacherRun, {
    model: { backbone: "[1,1,1,1]", width: 0.25, embeddingSize: 12 },
    steps: 2,
    checkpointEvery: 2,
  });
  const r = mfrSync("train", cfg);
  assert.equal(r.status, 0, r.stderr);
});

test("mfr train distills online from a teacher's run folder; a resume restores the projection", () => {
  const run = path.join(tmp, "student");
  const distill = { teacher: teacherRun, lambda: 4 };
  const first = mfrSync("train", tinyTrainConfig(tmp, data, run, { distill, steps: 2, checkpointEvery: 2 }));
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stderr, /step 1 loss [\d.]+ \(ce [\d.]+ distill [\d.]+\)/);
  assertDistilled(metrics(run), 4);
  // The 16-d student is projected onto the 12-d teacher: the projection is in the checkpoint...
  const ckpt = listCheckpoints(run).at(-1)!.dir;
  const header = fs
    .readFileSync(path.join(ckpt, "backbone.safetensors"))
    .subarray(8, 20000)
    .toString("latin1");
  assert.match(header, /"distill\.projection\.weight":\{"dtype":"F32","shape":\[12,16\]/);
  // ...and not in the backbone that export/embed/eval load.
  const loaded = loadBackboneCheckpoint(ckpt);
  assert.equal(loaded.descriptor.numFeatures, 16);
  loaded.model.dispose();
  // Resuming without the projection would start it over: the run refuses a checkpoint lacking it.
  const resumed = mfrSync(
    "train",
    tinyTrainConfig(tmp, data, run, { distill, steps: 3, checkpointEvery: 2 }),
    "--resume",
  );
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.deepEqual(
    metrics(run).map((l) => l.step),
    [1, 2, 3],
  );
  assertDistilled(metrics(run), 4);
  const plain = path.join(tmp, "plain");
  const p = mfrSync("train", tinyTrainConfig(tmp, data, plain, { steps: 2, checkpointEvery: 2 }));
  assert.equal(p.status, 0, p.stderr);
  fs.cpSync(path.join(plain, "checkpoints"), path.join(tmp, "mixed", "checkpoints"), { recursive: true });
  const mixed = mfrSync(
    "train",
    tinyTrainConfig(tmp, data, path.join(tmp, "mixed"), { distill, steps: 3 }),
    "--resume",
  );
  assert.notEqual(mixed.status, 0);
  assert.match(mixed.stderr, /backbone\.safetensors: holds no distillation projection/);
});

test("mfr distill features writes a store that mfr train reads in mode features", () => {
  const store = path.join(tmp, "store");
  const writeStore = (...flags: string[]) =>
    mfrSync("distill", "features", "--teacher", teacherRun, "--data", data, "--out", store, ...flags);
  const w = writeStore("--batch-size", "8");
  assert.equal(w.status, 0, w.stderr);
  assert.match(w.stderr, /wrote .*store: 20 records × 6 variants × 12-d fp16 in 1 part\(s\)/);
  const run = path.join(tmp, "from-store");
  const distill = { teacher: teacherRun, mode: "features", store };
  const r = mfrSync(
    "train",
    tinyTrainConfig(tmp, data, run, {
      data: { path: data, batchSize: 4, workers: 1, maskProb: 0.5 },
      distill,
      steps: 2,
    }),
  );
  assert.equal(r.status, 0, r.stderr);
  assertDistilled(metrics(run), 9);
  // Written again into the same folder: nothing left to do, the same store.
  const before = fs.readFileSync(path.join(store, "manifest.json"), "utf8");
  const again = writeStore();
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, /resumed after 20 records already written/);
  assert.equal(fs.readFileSync(path.join(store, "manifest.json"), "utf8"), before);
  // With other settings it refuses to mix rows into that store.
  const other = writeStore("--no-flip");
  assert.notEqual(other.status, 0);
  assert.match(other.stderr, /progress\.json: this store was started with a different augment/);
});
