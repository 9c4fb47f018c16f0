// Distillation through the trainer: a feature store gives the same first step as the online
// teacher when augmentation is off (up to the store's fp16); a store that does not match the run
// (dataset, teacher, flips, masks, damaged part) is refused naming the file and the field; every
// distill key changes what the run does or is refused where it would be ignored.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as T from "../../src/torch/index.ts";
import { synthesizeDataset } from "../../src/data/index.ts";
import { buildBackbone, saveBackboneCheckpoint } from "../../src/models/index.ts";
import { exportCheckpoint } from "../../src/export/index.ts";
import { openOnnxTeacher } from "../../src/eval/index.ts";
import {
  type StepMetrics,
  type TrainConfigInput,
  parseConfig,
  train,
  writeFeatureStore,
} from "../../src/train/index.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-distill-"));
const data = path.join(tmp, "data");
const other = path.join(tmp, "other");
const teacher = path.join(tmp, "teacher.safetensors");
const otherTeacher = path.join(tmp, "teacher2.safetensors");
const plainStore = path.join(tmp, "store-plain");
const fullStore = path.join(tmp, "store-full");

before(async () => {
  await synthesizeDataset({ out: data, identities: 4, imagesPerIdentity: 4, seed: 5 });
  await synthesizeDataset({ out: other, identities: 4, imagesPerIdentity: 4, seed: 6 });
  for (const [file, seed] of [
    [teacher, 3],
    [otherTeacher, 4],
  ] as const) {
    T.manualSeed(seed);
    const m = buildBackbone("[1,1,1,1]", { width: 0.125, numFeatures: 8 });
    saveBackboneCheckpoint(file, m);
    m.dispose();
  }
  const common = { teacher, data, batchSize: 8, workers: 1, device: "cpu" as const };
  await writeFeatureStore({ ...common, out: plainStore, maskVariants: 0, flips: false });
  await writeFeatureStore({ ...common, out: fullStore, maskVariants: 2 });
});

function config(runDir: string, over: Partial<TrainConfigInput> = {}): TrainConfigInput {
  return {
    runDir,
    device: "cpu",
    data: { path: data, batchSize: 4, workers: 1, maskProb: 0, flipProb: 0 },
    model: { backbone: "[1,1,1,1]", width: 0.125, embeddingSize: 16 },
    head: { numClasses: 0, sampleRate: 1, margin: "cosface" },
    optim: { lr: 0.05, clipNorm: 0 },
    dist: {},
    steps: 2,
    ...over,
  };
}

async function firstStep(c: TrainConfigInput): Promise<{ m: StepMetrics; params: T.Tensor }> {
  let m: StepMetrics | undefined;
  const r = await train(parseConfig(c), {
    stopAfter: 1,
    onEvent: (e) => e.kind === "step" && (m = e.metrics),
  });
  const params = T.cat(r.backbone.parameters().map((p) => p.detach().flatten())).keep();
  r.backbone.dispose();
  return { m: m!, params };
}

test("features equals online with augmentation off: the same losses and update at step 1", async () => {
  const online = await firstStep(config(path.join(tmp, "online"), { distill: { teacher } }));
  const features = await firstStep(
    config(path.join(tmp, "features"), { distill: { teacher, mode: "features", store: plainStore } }),
  );
  const none = await firstStep(config(path.join(tmp, "none")));
  assert.equal(features.m.ce, online.m.ce, "the same images and weights: the same CE");
  // The store holds fp16 unit vectors: ~1e-3 relative, nothing more.
  assert.ok(Math.abs(features.m.distill! - online.m.distill!) < 2e-3 * online.m.distill!);
  assert.ok(online.m.distill! > 0.1, "the teacher is not the student");
  const gap = features.params.sub(online.params).norm().item();
  const effect = online.params.sub(none.params).norm().item();
  assert.ok(effect > 0, "distillation changes the update");
  assert.ok(gap < 1e-2 * effect, `features vs online ${gap}, distillation's own effect ${effect}`);
});

test("λ weighs the distillation term: loss = ce + λ·distill in the metrics", async () => {
  for (const lambda of [9, 2.5]) {
    const { m } = await firstStep(
      config(path.join(tmp, `lambda-${lambda}`), { distill: { teacher, lambda } }),
    );
    assert.ok(Math.abs(m.loss - (m.ce! + lambda * m.distill!)) < 1e-4 * m.loss, JSON.stringify(m));
  }
});

const refusal = async (c: TrainConfigInput, re: RegExp): Promise<void> => {
  await assert.rejects(train(parseConfig(c), { stopAfter: 1 }), re);
};

test("a store that does not match the run is refused, naming the store's file and the field", async () => {
  const manifest = path.join(plainStore, "manifest.json").replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const run = (name: string, over: Partial<TrainConfigInput>, store = plainStore): TrainConfigInput => {
    const c = config(path.join(tmp, name), over);
    return { ...c, distill: { teacher, mode: "features", store, ...over.distill } };
  };
  await refusal(
    run("flips", { data: { path: data, batchSize: 4, workers: 1, maskProb: 0, flipProb: 0.5 } }),
    new RegExp(`${manifest}: augment.flips is false, the run needs true`),
  );
  await refusal(
    run("masks", { data: { path: data, batchSize: 4, workers: 1, maskProb: 0.35, flipProb: 0 } }),
    new RegExp(`${manifest}: augment.recordMasks is null`),
  );
  await refusal(
    run("size", { data: { path: data, batchSize: 4, workers: 1, maskProb: 0, flipProb: 0, imageSize: 96 } }),
    new RegExp(`${manifest}: augment.imageSize is 112, the run needs 96`),
  );
  await refusal(
    run("dataset", { data: { path: other, batchSize: 4, workers: 1, maskProb: 0, flipProb: 0 } }),
    new RegExp(
      `${manifest}: dataset.identity is "[0-9a-f]+", the run needs "[0-9a-f]+" \\(written for ${data}, not ${other}\\)`,
    ),
  );
  await refusal(
    run("teacher", { distill: { teacher: otherTeacher, mode: "features", store: plainStore } }),
    new RegExp(
      `${manifest}: teacher.sha256 is .* \\(written by ${teacher}, not distill.teacher ${otherTeacher}\\)`,
    ),
  );
  // A part edited after the manifest sealed it.
  const damaged = path.join(tmp, "store-damaged");
  fs.cpSync(plainStore, damaged, { recursive: true });
  const part = path.join(damaged, "part-0-of-1.f16");
  const bytes = fs.readFileSync(part);
  bytes[10] = (bytes[10] ?? 0) ^ 0xff;
  fs.writeFileSync(part, bytes);
  await refusal(run("damaged", {}, damaged), /part-0-of-1\.f16: sha256 differs/);
  // The full store covers masks and flips.
  const { m } = await firstStep(
    run("full", { data: { path: data, batchSize: 4, workers: 1, maskProb: 0.5, flipProb: 0.5 } }, fullStore),
  );
  assert.ok(m.distill! > 0);
});

test("distill keys: the teacher must exist, features needs a store, online reads none", async () => {
  await refusal(
    config(path.join(tmp, "noteacher"), { distill: { teacher: path.join(tmp, "nope.pth") } }),
    /distill\.teacher: .*nope\.pth does not exist/,
  );
  assert.throws(
    () => parseConfig(config("r", { distill: { teacher, mode: "features" } })),
    /distill\.store: distill\.mode 'features' reads the teacher's features from a store/,
  );
  assert.throws(
    () => parseConfig(config("r", { distill: { teacher, store: plainStore } })),
    /distill\.store: distill\.mode 'online' runs the teacher and reads no store/,
  );
  assert.throws(() => parseConfig(config("r", { distill: { teacher, lambda: 0 } })), /distill\.lambda/);
  assert.throws(
    () => parseConfig(config("r", { distill: { teacher, temperature: 2 } as never })),
    /distill.*temperature/,
  );
  const c = parseConfig(config("r", { distill: { teacher } }));
  assert.deepEqual(c.distill, { teacher, lambda: 9, mode: "online" });
});

test("an .onnx teacher (onnxruntime, CPU) writes the rows its checkpoint writes, and teaches online", async () => {
  const onnx = path.join(tmp, "teacher.onnx");
  await exportCheckpoint({ checkpoint: teacher, out: onnx, verify: false });
  const out = path.join(tmp, "store-onnx");
  const common = { data, batchSize: 8, workers: 1, device: "cpu" as const, maskVariants: 0, flips: false };
  await writeFeatureStore({ ...common, teacher: onnx, out, onnx: openOnnxTeacher });
  const rows = (dir: string): T.Tensor => {
    const bits = new Uint16Array(new Uint8Array(fs.readFileSync(path.join(dir, "part-0-of-1.f16"))).buffer);
    return T.tensor(bits, { dtype: "f16" }).float().keep();
  };
  const diff = rows(out).sub(rows(plainStore)).abs().max().item();
  assert.ok(diff < 4e-3, `onnx vs checkpoint rows differ by ${diff}`);
  const c = config(path.join(tmp, "onnx-online"), { distill: { teacher: onnx } });
  await refusal(c, /distill\.teacher: .*teacher\.onnx: this caller cannot run ONNX teachers/);
  let m: StepMetrics | undefined;
  const r = await train(parseConfig(c), {
    stopAfter: 1,
    onnxTeacher: openOnnxTeacher,
    onEvent: (e) => e.kind === "step" && (m = e.metrics),
  });
  r.backbone.dispose();
  assert.ok(m!.distill! > 0.1);
});
