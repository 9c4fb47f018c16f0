// Distillation inside the step: the gradient the step adds for CE + λ·mean‖t/‖t‖ − s/‖s‖‖² is the
// closed form −(2λ/N)/‖z‖·(t̂ − ẑ(ẑ·t̂)) per row z (the student's embedding, or its projection),
// with and without a projection, in one micro-batch and in two; and on 2 ranks as on one.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as T from "../../src/torch/index.ts";
import { Linear } from "../../src/nn/index.ts";
import { SGD } from "../../src/optim/index.ts";
import { ProcessGroup } from "../../src/distributed/index.ts";
import { PartialFC } from "../../src/head/index.ts";
import { DistillTerm, TrainStep } from "../../src/train/index.ts";
import { runRanks } from "../helpers/ranks.ts";

const N = 6;
const IN = 5;
const D = 4;

/** The backbone's (and projection's) accumulated gradients of one step, with or without distillation. */
function grads(x: T.Tensor, y: T.Tensor, teacher: T.Tensor | undefined, lambda: number, M: number) {
  T.manualSeed(7);
  const net = new Linear(IN, D, { bias: false });
  const term = teacher ? new DistillTerm(lambda, D, teacher.size(1)) : undefined;
  const head = new PartialFC(ProcessGroup.single(), {
    numClasses: 3,
    embeddingSize: D,
    sampleRate: 1,
    margin: { s: 8, m3: 0.2 },
    seed: 1,
  });
  const params = [net.weight, ...(term?.parameters() ?? [])];
  let out: T.Tensor[] = [];
  const step = new TrainStep(
    ProcessGroup.single(),
    net,
    [{ params }],
    head,
    new SGD([head.weight], { lr: 0.1 }),
    (g) => new SGD(g, { lr: 0.1 }),
    {
      microBatches: M,
      ...(term ? { distill: term } : {}),
      afterBackward: (i) => {
        if (i === M - 1) out = params.map((p) => p.grad!.clone().keep());
      },
    },
  );
  const before = { weight: net.weight.clone().keep(), projection: term?.projection?.weight.clone().keep() };
  const r = step.run(x, y, teacher);
  step.dispose();
  head.dispose();
  return { grads: out, outcome: r, net, term, before };
}

/** d/dz of mean_i ‖t̂_i − ẑ_i‖² · λ, rows z [N, Dz]. */
function closedForm(z: T.Tensor, t: T.Tensor, lambda: number): T.Tensor {
  const n = z.size(0);
  const norm = z.norm(2, 1, true);
  const zh = z.div(norm);
  const th = t.div(t.norm(2, 1, true));
  const along = zh.mul(th).sum([1], true);
  return th
    .sub(zh.mul(along))
    .div(norm)
    .mul((-2 * lambda) / n);
}

const close = (a: T.Tensor, b: T.Tensor, what: string): void => {
  const err = a.sub(b).abs().max().item();
  const scale = Math.max(1e-6, b.abs().max().item());
  assert.ok(err / scale < 2e-4, `${what}: relative error ${err / scale}`);
};

for (const [teacherD, M] of [
  [D, 1],
  [D, 2],
  [3, 1],
  [7, 2],
] as const) {
  test(`distillation gradient = closed form (teacher ${teacherD}-d, student ${D}-d, ${M} micro-batch(es))`, () => {
    T.scope(() => {
      T.manualSeed(11);
      const x = T.randn([N, IN]);
      const y = T.tensor([0, 1, 2, 0, 1, 2], { dtype: "i64" });
      const t = T.randn([N, teacherD]);
      const lambda = 9;
      const plain = grads(x, y, undefined, lambda, M);
      const dist = grads(x, y, t, lambda, M);
      // The weights both runs started from are the same (seeded), so the CE parts cancel.
      close(dist.before.weight, plain.before.weight, "initial weights");
      const W = dist.before.weight;
      const s = T.linear(x, W);
      const P = dist.before.projection;
      assert.equal(P === undefined, teacherD === D, "a projection exactly when the sizes differ");
      const z = P ? T.linear(s, P) : s;
      const gz = closedForm(z, t, lambda);
      const gs = P ? gz.matmul(P) : gz;
      close(dist.grads[0]!.sub(plain.grads[0]!), gs.transpose(0, 1).matmul(x), "backbone gradient");
      if (P) close(dist.grads[1]!, gz.transpose(0, 1).matmul(s), "projection gradient");
      // The outcome: loss = ce + λ·distill, with the same ce as without distillation.
      const o = dist.outcome;
      assert.ok(Math.abs(o.parts.ce! - plain.outcome.parts.ce!) < 1e-5);
      const expected = z
        .div(z.norm(2, 1, true))
        .sub(t.div(t.norm(2, 1, true)))
        .square()
        .sum(1)
        .mean()
        .item();
      assert.ok(Math.abs(o.parts.distill! - expected) < 1e-5, `distill ${o.parts.distill} vs ${expected}`);
      assert.ok(Math.abs(o.loss - (o.parts.ce! + lambda * o.parts.distill!)) < 1e-4);
    });
  });
}

test("the step refuses a batch without the teacher's embeddings when distilling, and with them when not", () => {
  T.scope(() => {
    const x = T.randn([N, IN]);
    const y = T.zeros([N], { dtype: "i64" });
    const make = (term?: DistillTerm): TrainStep => {
      const net = new Linear(IN, D, { bias: false });
      const g = ProcessGroup.single();
      const head = new PartialFC(g, { numClasses: 3, embeddingSize: D, sampleRate: 1, margin: { s: 8 } });
      const opt = (p: T.Tensor[]): SGD => new SGD(p, { lr: 0.1 });
      return new TrainStep(
        g,
        net,
        [{ params: [net.weight] }],
        head,
        opt([head.weight]),
        (gs) => new SGD(gs, { lr: 0.1 }),
        term ? { distill: term } : {},
      );
    };
    assert.throws(
      () => make(new DistillTerm(9, D, D)).run(x, y),
      /distillation needs the teacher's embeddings/,
    );
    assert.throws(() => make().run(x, y, T.randn([N, D])), /no distillation configured/);
  });
});

test("on 2 ranks, each distilling its own slice equals one process on the whole batch", async () => {
  const lines = await runRanks<{ rank: number; backboneRel: number; headRel: number; lossRel: number }>(
    2,
    path.join(path.dirname(fileURLToPath(import.meta.url)), "worker-distill-dp.ts"),
  );
  assert.equal(lines.length, 2);
  for (const l of lines) {
    assert.ok(l.lossRel <= 1e-5, `rank ${l.rank}: loss rel ${l.lossRel}`);
    assert.ok(l.backboneRel <= 1e-5, `rank ${l.rank}: backbone and projection rel ${l.backboneRel}`);
    assert.ok(l.headRel <= 1e-5, `rank ${l.rank}: head rel ${l.headRel}`);
  }
});
