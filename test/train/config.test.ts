// Configs: presets validate, --set overrides parse JSON values and name unknown or bad keys.
import { test } from "node:test";
import assert from "node:assert/strict";
import { applyOverrides, headIsFused, loadConfigFile, parseConfig } from "../../src/train/index.ts";
import { DEFAULT_LOSS_SCALE } from "../../src/train/precision.ts";
import { DEFAULT_BUCKET_CAP_MB, DEFAULT_TIMEOUT_S } from "../../src/distributed/index.ts";
import base from "../../configs/base.ts";
import demo from "../../configs/demo.ts";
import partialFc from "../../configs/partial-fc.ts";
import r240 from "../../configs/webface42m_r240.ts";
import r100 from "../../configs/webface42m_r100.ts";
import r600 from "../../configs/webface42m_r600_teacher.ts";
import r1200 from "../../configs/webface42m_r1200_teacher.ts";
import distilled from "../../configs/webface42m_r240_distill.ts";

test("presets are valid and derived from base", () => {
  for (const c of [base, demo, partialFc, r240, r100, r600, r1200, distilled]) parseConfig(c);
  const big = parseConfig(r240);
  assert.deepEqual(
    [big.model.backbone, big.train.checkpoint, big.train.microBatches, big.train.amp, big.train.zero],
    ["r240", { every: 1 }, 2, "fp16", 2],
  );
  // LARS at 0.01 per 256 images, linearly scaled, warm-up, multistep.
  assert.deepEqual(
    [big.data.batchSize, big.optim.referenceBatch, big.optim.decay],
    [256, 256, { name: "multistep", milestones: [62208, 103680, 139968], gamma: 0.1 }],
  );
  assert.ok(big.optim.warmupSteps > 0);
  // The entry's recipe: CosFace s 64 m 0.4 on every class, LARS 0.01, weight decay 5e-4, masks on 35%.
  assert.deepEqual(
    [
      big.head.margin,
      big.head.sampleRate,
      big.optim.name,
      big.optim.lr,
      big.optim.weightDecay,
      big.data.maskProb,
    ],
    ["cosface", 1, "lars", 0.01, 5e-4, 0.35],
  );
  // The teachers are that recipe on another backbone, nothing else.
  for (const [t, backbone] of [
    [r600, "r600"],
    [r1200, "r1200"],
  ] as const) {
    const c = parseConfig(t);
    assert.deepEqual({ ...c, runDir: big.runDir, model: big.model }, big);
    assert.equal(c.model.backbone, backbone);
    assert.notEqual(c.runDir, big.runDir);
  }
  // The submitted student: the recipe plus λ = 9 online distillation from the r600 teacher's run.
  const d = parseConfig(distilled);
  assert.deepEqual(d.distill, { teacher: parseConfig(r600).runDir, lambda: 9, mode: "online" });
  assert.deepEqual({ ...d, runDir: big.runDir, distill: undefined }, { ...big, distill: undefined });
  // arcface_torch's wf42m_pfc02_r100: SGD 0.1 poly, Partial FC 0.2, batch 128, fp16, no masks.
  const af = parseConfig(r100);
  assert.deepEqual(
    [af.model.backbone, af.optim.name, af.optim.lr, af.optim.decay, af.head.sampleRate, af.data.batchSize],
    ["r100", "sgd", 0.1, "poly", 0.2, 128],
  );
  assert.deepEqual([af.train.amp, af.data.maskProb, af.steps], ["fp16", 0, 829580]);
  assert.equal(parseConfig(partialFc).head.sampleRate, 0.1);
  assert.equal(parseConfig(partialFc).head.numClasses, 2059906);
});

test("sections whose keys all have defaults may be left out, with the library's defaults", () => {
  const minimal = { runDir: "runs/x", data: { path: "d", batchSize: 8 }, steps: 10 };
  const c = parseConfig(minimal);
  assert.deepEqual(parseConfig({ ...minimal, model: {}, head: {}, optim: {}, dist: {}, train: {} }), c);
  assert.deepEqual(c.dist, {
    compress: "none",
    bucketCapMB: DEFAULT_BUCKET_CAP_MB,
    timeoutS: DEFAULT_TIMEOUT_S,
  });
  const { enabled, ...scale } = c.train.lossScale;
  assert.equal(enabled, "auto");
  assert.deepEqual(scale, DEFAULT_LOSS_SCALE);
  assert.deepEqual([c.model.backbone, c.head.margin, c.optim.name], ["r50", "cosface", "sgd"]);
  assert.throws(() => parseConfig({ ...minimal, optim: { name: "adam" } }), /optim\.name/);
  assert.throws(() => parseConfig({ ...minimal, train: { amp: "fp8" } }), /train\.amp/);
});

test("--set overrides nested keys with JSON values", () => {
  const c = parseConfig(
    applyOverrides(base, ["head.sampleRate=0.2", "steps=10", "data.path=/x/y.rec", "head.margin=arcface"]),
  );
  assert.equal(c.head.sampleRate, 0.2);
  assert.equal(c.steps, 10);
  assert.equal(c.data.path, "/x/y.rec");
  assert.equal(c.head.margin, "arcface");
  assert.equal(base.steps, 200000, "the preset itself is untouched");
});

test("peak-memory switches: defaults, and bad combinations name the key", () => {
  const c = parseConfig(base);
  assert.deepEqual(
    [c.train.microBatches, c.train.checkpoint, c.train.amp, c.train.zero, c.train.headPrecision],
    [1, "none", "none", 0, "fp32"],
  );
  assert.throws(
    () => parseConfig({ ...base, train: { microBatches: 3 } }),
    /train\.microBatches: 3 micro-batches do not divide data\.batchSize 256/,
  );
  assert.throws(() => parseConfig({ ...base, train: { zero: 3 } }), /train\.zero/);
  // Gloo has no bf16 all-reduce: refused when the config is read, not at the first step.
  assert.throws(
    () => parseConfig({ ...base, device: "cpu", dist: { compress: "bf16" } }),
    /dist\.compress: bf16 needs NCCL \(CUDA\).*use 'fp16'/,
  );
  assert.throws(
    () => parseConfig({ ...base, dist: { compress: "bf16" } }),
    /dist\.compress/,
    "auto is the CPU here",
  );
  assert.equal(parseConfig({ ...base, dist: { compress: "fp16" } }).dist.compress, "fp16");
  assert.throws(() => parseConfig({ ...base, train: { checkpoint: { every: 0 } } }), /train\.checkpoint/);
  assert.deepEqual(parseConfig(applyOverrides(base, ['train.checkpoint={"every":4}'])).train.checkpoint, {
    every: 4,
  });
});

test("bad overrides name the key", () => {
  assert.throws(() => applyOverrides(base, ["head.sampleRat=0.2"]), /unknown key 'head.sampleRat'/);
  assert.throws(() => applyOverrides(base, ["nope=1"]), /unknown key 'nope'/);
  assert.throws(() => applyOverrides(base, ["steps"]), /expected key=value/);
  assert.throws(() => parseConfig(applyOverrides(base, ["head.sampleRate=1.5"])), /head\.sampleRate/);
  assert.throws(() => parseConfig(applyOverrides(base, ["data.batchSize=abc"])), /data\.batchSize/);
});

test("loadConfigFile applies --set and reports the source", async () => {
  const c = await loadConfigFile("configs/demo.ts", ["steps=7"]);
  assert.equal(c.steps, 7);
  await assert.rejects(
    loadConfigFile("configs/demo.ts", ["optim.lr=-1"]),
    /configs\/demo\.ts with --set optim\.lr=-1 is invalid:\n {2}optim\.lr/,
  );
});

test("the fused head: on with SGD by default, refused with another optimizer, chunk only when used", () => {
  const minimal = { runDir: "runs/x", data: { path: "d", batchSize: 8 }, steps: 10 };
  assert.equal(headIsFused(parseConfig(minimal)), true);
  assert.equal(headIsFused(parseConfig({ ...minimal, optim: { name: "lars" } })), false);
  assert.equal(headIsFused(parseConfig({ ...minimal, head: { fused: false } })), false);
  assert.equal(parseConfig({ ...minimal, head: { chunk: 1024 } }).head.chunk, 1024);
  assert.throws(
    () => parseConfig({ ...minimal, head: { fused: true }, optim: { name: "adamw" } }),
    /head\.fused: .*optim\.name is 'adamw'/,
  );
  assert.throws(
    () => parseConfig({ ...minimal, head: { fused: false, chunk: 512 } }),
    /head\.chunk: applies to the fused head only/,
  );
  assert.throws(() => parseConfig({ ...minimal, head: { chunk: 0 } }), /head\.chunk/);
});
