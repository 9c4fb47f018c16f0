// The training step on a CUDA device (run by scripts/gpu-check.sh on a machine with a GPU; not
// in the CPU suite): it matches the same step on the CPU, fp16 loss scaling skips a step whose
// gradients overflow, and the head and the c10d collectives work on CUDA tensors through NCCL.
// Without a visible GPU every test here reports itself as not applicable.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as T from "../src/torch/index.ts";
import { native } from "../src/torch/native.ts";
import { ProcessGroup, freePort } from "../src/distributed/index.ts";
import { PartialFC } from "../src/head/index.ts";
import { SGD } from "../src/optim/index.ts";
import { IResNet } from "../src/models/index.ts";
import { type StepOptions, TrainStep } from "../src/train/step.ts";

const skip = T.cudaAvailable() ? false : "not applicable: no CUDA device visible";
const D = 32;
const CLASSES = 50;

function setup(device: string, o: StepOptions = {}, sampleRate = 1) {
  T.manualSeed(5); // the same initial weights on both devices: drawn on the CPU, then moved
  const net = new IResNet({ blocks: [1, 1, 1, 1], width: 0.25, numFeatures: D }).to(device).train();
  const group = ProcessGroup.single();
  const head = new PartialFC(group, {
    numClasses: CLASSES,
    embeddingSize: D,
    sampleRate,
    margin: { s: 16, m3: 0.2 },
    seed: 1,
    device,
  });
  const opts = { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 };
  const params = net.parameters().filter((p) => p.requiresGrad);
  const step = new TrainStep(
    group,
    net,
    [{ params }],
    head,
    new SGD([head.weight], opts),
    (g) => new SGD(g, opts),
    {
      device,
      clipNorm: 5,
      ...o,
    },
  );
  const dispose = (): void => {
    step.dispose();
    head.dispose();
    net.dispose();
  };
  return { net, head, step, params, dispose };
}

function batch(): { x: T.Tensor; y: T.Tensor } {
  T.manualSeed(77);
  return { x: T.randn([16, 3, 112, 112]).keep(), y: T.randint(0, CLASSES, [16]).keep() };
}

const maxRelDiff = (a: T.Tensor, b: T.Tensor): number =>
  T.scope(() => {
    const d = a.to("cpu").float().sub(b.to("cpu").float()).abs().max().item();
    return d / Math.max(b.to("cpu").float().abs().max().item(), 1e-12);
  });

test("two training steps on CUDA match the CPU steps", { skip }, () => {
  const device = T.resolveDevice("cuda");
  const { x, y } = batch();
  const cpu = setup("cpu");
  const gpu = setup(device);
  assert.equal(gpu.step.precision.device, "cuda");
  assert.ok(gpu.head.weight.device.startsWith("cuda"));
  for (let i = 0; i < 2; i++) {
    const a = cpu.step.run(x, y);
    const b = gpu.step.run(T.toDevice(x, device), T.toDevice(y, device));
    // cuDNN may run convolutions in TF32 and other algorithms: close, not bit-equal.
    assert.ok(Math.abs(a.loss - b.loss) <= 2e-3 * Math.abs(a.loss), `step ${i}: loss ${a.loss} vs ${b.loss}`);
  }
  cpu.params.forEach((p, i) => {
    assert.ok(maxRelDiff(gpu.params[i]!, p) < 2e-2, `parameter ${i}: ${maxRelDiff(gpu.params[i]!, p)}`);
  });
  assert.ok(maxRelDiff(gpu.head.weight, cpu.head.weight) < 1e-3);
  cpu.dispose();
  gpu.dispose();
});

test(
  "fp16 autocast with loss scaling: an overflowing step is skipped, the scale halves, then it trains",
  { skip },
  () => {
    const device = T.resolveDevice("cuda");
    const { x, y } = batch();
    // A scale of 2^100 makes the fp16 backward overflow for real; 2^8 after the backoff does not.
    const s = setup(device, {
      amp: "fp16",
      lossScale: { init: 2 ** 100, growthFactor: 2, backoffFactor: 2 ** -92, growthInterval: 1000 },
    });
    const before = s.params.map((p) => p.to("cpu"));
    const headBefore = s.head.weight.to("cpu");
    const xd = T.toDevice(x, device);
    const yd = T.toDevice(y, device);
    const first = s.step.run(xd, yd);
    assert.equal(first.skipped, true);
    assert.equal(first.lossScale, 2 ** 100);
    assert.equal(s.step.scaler!.scale, 2 ** 8);
    s.params.forEach((p, i) => assert.equal(maxRelDiff(p, before[i]!), 0, "a skipped step changes nothing"));
    assert.equal(maxRelDiff(s.head.weight, headBefore), 0);
    const losses = Array.from({ length: 6 }, () => s.step.run(xd, yd));
    assert.ok(losses.every((o) => !o.skipped && Number.isFinite(o.loss)));
    assert.ok(
      losses.at(-1)!.loss < losses[0]!.loss,
      `fp16 losses ${losses.map((o) => o.loss.toFixed(3)).join(" ")}`,
    );
    s.dispose();
  },
);

test("bf16 autocast on CUDA trains", { skip }, () => {
  const device = T.resolveDevice("cuda");
  const { x, y } = batch();
  const s = setup(device, { amp: "bf16" }, 0.2);
  const xd = T.toDevice(x, device);
  const yd = T.toDevice(y, device);
  const losses = Array.from({ length: 6 }, () => s.step.run(xd, yd).loss);
  assert.ok(losses.at(-1)! < losses[0]!, `bf16 losses ${losses.map((l) => l.toFixed(3)).join(" ")}`);
  // Partial FC samples on the device: every label of the batch is among the sampled classes.
  const sampled = new Set(s.head.lastSampled!.toArray());
  assert.ok(y.toArray().every((c) => sampled.has(c)));
  assert.equal(sampled.size, Math.max(Math.floor(0.2 * CLASSES), new Set(y.toArray()).size));
  s.dispose();
});

test("NCCL on one rank: collectives on CUDA tensors give their values", { skip }, async () => {
  const device = T.resolveDevice("cuda");
  assert.ok(native.groupNccl, "a CUDA build has the NCCL backend");
  const store = native.storeCreate("127.0.0.1", await freePort(), true, 1, 30_000);
  const g = native.groupNccl(store, 0, 1, 30_000);
  const a = T.tensor([1, -2, 3], { device });
  native.workWait(native.allreduce(g, [a.native], "max"));
  assert.deepEqual(a.toArray(), [1, -2, 3]);
  const out = T.zeros([3], { device });
  native.workWait(native.allgather(g, [out.native], a.native));
  assert.deepEqual(out.toArray(), [1, -2, 3]);
  const rs = T.zeros([3], { device });
  native.workWait(native.reduceScatter(g, rs.native, [a.mul(2).native], "sum"));
  assert.deepEqual(rs.toArray(), [2, -4, 6]);
  await native.workWaitAsync(native.barrier(g));
  native.groupDestroy(g);
});

test("the CUDA allocator's figures: a 64 MiB tensor shows in allocated and in the peak", { skip }, () => {
  const device = T.resolveDevice("cuda");
  T.synchronize(device);
  const base = T.cudaMemory(device, { resetPeak: true });
  const t = T.empty([16 << 20], { device });
  const m = T.cudaMemory(device);
  assert.ok(m.allocated - base.allocated >= 64 << 20);
  assert.ok(m.peakAllocated >= m.allocated && m.reserved >= m.allocated);
  t.dispose();
  assert.ok(T.cudaMemory(device).allocated < m.allocated);
});
