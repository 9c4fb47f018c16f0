// The `device` setting on a machine without CUDA: "auto" trains on the CPU with Gloo, "cuda" is
// refused naming the key before anything is written, and the CPU step is the code it always was.
// (The same paths on a GPU: test-gpu/, run by scripts/gpu-check.sh.)
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as T from "../../src/torch/index.ts";
import { ProcessGroup, freePort } from "../../src/distributed/index.ts";
import { defaultBackend } from "../../src/distributed/group.ts";
import { PartialFC } from "../../src/head/index.ts";
import { SGD } from "../../src/optim/index.ts";
import { buildBackbone } from "../../src/models/index.ts";
import { parseConfig, train, TrainStep } from "../../src/train/index.ts";
import base from "../../configs/base.ts";

test("device is auto unless set, and only auto, cpu or cuda are accepted", () => {
  assert.equal(parseConfig(base).device, "auto");
  assert.equal(parseConfig({ ...base, device: "cpu" }).device, "cpu");
  assert.throws(() => parseConfig({ ...base, device: "gpu" as "cuda" }), /^[^]*\n {2}device: /);
});

test("auto resolves to the CPU on a machine without CUDA; cuda is refused naming the key", () => {
  assert.equal(T.cudaDeviceCount(), 0, "this test describes a CPU-only machine");
  assert.equal(T.resolveDevice("auto"), "cpu");
  assert.equal(T.resolveDevice("cpu", 3), "cpu");
  assert.throws(() => T.resolveDevice("cuda"), /^Error: device: 'cuda' requested but .*libtorch|CUDA device/);
  assert.throws(() => T.cudaMemory("cpu"), /not a CUDA device/);
});

test("train with device cuda fails before touching the run folder", async () => {
  const runDir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "mfr-device-")), "run");
  const cfg = parseConfig({
    ...base,
    runDir,
    device: "cuda",
    steps: 1,
    data: { path: "/nonexistent", batchSize: 2 },
  });
  await assert.rejects(train(cfg), /^Error: device: 'cuda' requested/);
  assert.equal(fs.existsSync(runDir), false);
});

test("the backend follows the device: NCCL for CUDA, Gloo for the CPU", async () => {
  assert.equal(defaultBackend(), "gloo");
  assert.equal(defaultBackend("cpu"), "gloo");
  assert.equal(defaultBackend("cuda:1"), "nccl");
  // A two-rank group on a CUDA device asks for NCCL, which this CPU build lacks; rank 0's store
  // starts without waiting, so the choice shows before any peer is needed.
  const placement = {
    rank: 0,
    worldSize: 2,
    localRank: 0,
    masterAddr: "127.0.0.1",
    masterPort: await freePort(),
    source: "single" as const,
  };
  assert.throws(
    () => ProcessGroup.init(placement, { device: "cuda:0", timeoutMs: 2000 }),
    /backend 'nccl' needs mfr built against a CUDA libtorch/,
  );
});

test("Module.to keeps each tensor's identity and refuses a device the build lacks", () => {
  T.manualSeed(0);
  const net = buildBackbone("[1,1,1,1]", { width: 0.125, numFeatures: 8 });
  const before = net.parameters();
  const values = before.map((p) => p.toArray());
  const trainable = before.map((p) => p.requiresGrad);
  assert.equal(net.to("cpu"), net);
  net.parameters().forEach((p, i) => {
    assert.equal(p, before[i]);
    assert.deepEqual(p.toArray(), values[i]);
    assert.equal(p.requiresGrad, trainable[i]);
    assert.ok(p.isLeaf);
  });
  assert.throws(() => net.to("cuda:0"));
  assert.deepEqual(net.parameters()[0]!.toArray(), values[0], "a failed move changes nothing");
  net.dispose();
});

test("a step takes its device from the backbone: the CPU step runs where it always did", () => {
  T.manualSeed(1);
  const net = buildBackbone("[1,1,1,1]", { width: 0.125, numFeatures: 8 });
  const group = ProcessGroup.single();
  const head = new PartialFC(group, {
    numClasses: 6,
    embeddingSize: 8,
    sampleRate: 1,
    margin: { s: 16, m3: 0.2 },
  });
  assert.equal(head.device, "cpu");
  const sgd = (g: { params: T.Tensor[] }[]): SGD => new SGD(g, { lr: 0.1 });
  const step = new TrainStep(
    group,
    net,
    [{ params: net.parameters() }],
    head,
    sgd([{ params: [head.weight] }]),
    sgd as never,
    {
      amp: "bf16",
    },
  );
  assert.equal(step.precision.device, "cpu");
  const x = T.randn([4, 3, 112, 112]);
  const out = step.run(x, T.tensor([0, 1, 2, 3], { dtype: "i64" }));
  assert.ok(Number.isFinite(out.loss) && !out.skipped);
  step.dispose();
  head.dispose();
  net.dispose();
});
