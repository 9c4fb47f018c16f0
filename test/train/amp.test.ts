// Mixed precision on CPU: bf16 autocast gives gradients close to fp32 and trains; the head's
// logits stay fp32 unless configured; fp16 is refused on CPU with the config key named.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/torch/index.ts";
import { ProcessGroup } from "../../src/distributed/index.ts";
import { PartialFC } from "../../src/head/index.ts";
import { SGD } from "../../src/optim/index.ts";
import { type CheckpointPolicy, IResNet } from "../../src/models/index.ts";
import { Precision, type StepOptions, TrainStep } from "../../src/train/index.ts";

const D = 16;
const CLASSES = 6;

function setup(amp: "none" | "bf16", o: StepOptions = {}, checkpoint?: CheckpointPolicy) {
  T.manualSeed(5);
  const net = new IResNet({ blocks: [1, 1, 1, 1], width: 0.25, numFeatures: D, checkpoint });
  net.train();
  const head = new PartialFC(ProcessGroup.single(), {
    numClasses: CLASSES,
    embeddingSize: D,
    sampleRate: 1,
    margin: { s: 16, m3: 0.2 },
    seed: 1,
  });
  const opts = { lr: 0.05, momentum: 0.9 };
  const params = net.parameters().filter((p) => p.requiresGrad);
  const step = new TrainStep(
    ProcessGroup.single(),
    net,
    [{ params }],
    head,
    new SGD([head.weight], opts),
    (g) => new SGD(g, opts),
    { amp, ...o },
  );
  return { net, head, step, params };
}

function assertFalls(losses: number[]): void {
  assert.ok(losses.every(Number.isFinite));
  assert.ok(losses.at(-1)! < 0.6 * losses[0]!, `losses ${losses.map((l) => l.toFixed(3)).join(" ")}`);
}

function release(setups: ReturnType<typeof setup>[], tensors: T.Tensor[]): void {
  for (const s of setups) {
    s.step.dispose();
    s.head.dispose();
    s.net.dispose();
  }
  for (const t of tensors) t.dispose();
}

function data(): { x: T.Tensor; y: T.Tensor } {
  T.manualSeed(77);
  // Each class a fixed random image plus noise: learnable in a few steps.
  const protos = T.randn([CLASSES, 3, 112, 112]);
  const y = T.tensor(new BigInt64Array(12).map((_, i) => BigInt(i % CLASSES)));
  const x = protos.indexSelect(0, y).add(T.randn([12, 3, 112, 112]).mul(0.3));
  return { x: x.keep(), y: y.keep() };
}

test("bf16 autocast: gradients close to fp32", () => {
  const { x, y } = data();
  const grads = (["none", "bf16"] as const).map((amp) =>
    T.scope(() => {
      const s = setup(amp);
      const emb = s.step.precision.backbone(() => s.net.forward(x));
      const loss = s.step.precision.headForward(() => s.head.forward(emb, y));
      loss.backward();
      const flat = T.cat(s.params.map((p) => p.grad!.flatten())).keep();
      s.step.dispose();
      s.head.dispose();
      s.net.dispose();
      return flat;
    }),
  );
  const [f32, bf16] = grads as [T.Tensor, T.Tensor];
  const cos = f32.mul(bf16).sum().item() / (f32.norm().item() * bf16.norm().item());
  const normRatio = bf16.norm().item() / f32.norm().item();
  assert.ok(cos > 0.99, `cosine of bf16 and fp32 gradients ${cos}`);
  assert.ok(Math.abs(normRatio - 1) < 0.05, `gradient norm ratio ${normRatio}`);
  assert.ok(f32.sub(bf16).abs().max().item() > 0, "bf16 changed nothing: autocast did not apply");
  for (const t of [f32, bf16, x, y]) t.dispose();
});

test("bf16 autocast trains: the loss falls", () => {
  const { x, y } = data();
  const s = setup("bf16");
  const losses: number[] = [];
  for (let i = 0; i < 12; i++) losses.push(s.step.run(x, y).loss);
  assertFalls(losses);
  release([s], [x, y]);
});

test("bf16 composes: checkpoint replays run under the same autocast (bit-identical), and every switch together trains", () => {
  const { x, y } = data();
  const plain = setup("bf16");
  const replayed = setup("bf16", {}, "stage");
  const all = setup("bf16", { microBatches: 2, zero: 2, lossScale: true }, { every: 1 });
  const losses: number[] = [];
  for (let i = 0; i < 10; i++) {
    const a = plain.step.run(x, y).loss;
    const b = replayed.step.run(x, y).loss;
    assert.equal(a, b, `step ${i}`);
    losses.push(all.step.run(x, y).loss);
  }
  const other = replayed.net.stateDict();
  for (const [k, t] of plain.net.stateDict()) assert.equal(t.sub(other.get(k)!).abs().max().item(), 0, k);
  assertFalls(losses);
  release([plain, replayed, all], [x, y]);
});

test("the head runs fp32 under bf16 unless configured; fp16 needs CUDA", () => {
  T.scope(() => {
    const a = T.randn([4, 8]);
    const w = T.randn([3, 8]);
    const fp32Head = new Precision("bf16");
    assert.equal(
      fp32Head.backbone(() => T.linear(a, w).dtype),
      "bf16",
    );
    assert.equal(
      fp32Head.headForward(() => T.linear(a, w).dtype),
      "f32",
    );
    assert.equal(
      new Precision("bf16", "cpu", "amp").headForward(() => T.linear(a, w).dtype),
      "bf16",
    );
  });
  assert.throws(() => new Precision("fp16"), /train\.amp: 'fp16' autocast needs a CUDA device/);
});
