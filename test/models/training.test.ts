// The pieces together, as the trainer will use them: a checkpointed backbone, a normalised
// classifier with CosFace, feature distillation from a frozen teacher, LARS with warm-up and
// clipping. Loss falls on a fixed batch, and the number of live tensors stays flat.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/torch/index.ts";
import { native } from "../../src/torch/native.ts";
import { IResNet } from "../../src/models/index.ts";
import { CombinedMargin, distillationLoss, featureDistill } from "../../src/losses/index.ts";
import { LARS, LRScheduler, clipGradNorm } from "../../src/optim/index.ts";

test("a distillation training loop learns and does not grow memory", () => {
  T.manualSeed(21);
  const tiny = { blocks: [1, 2, 1, 1] as const, width: 1 / 8, numFeatures: 16 };
  const student = new IResNet({ ...tiny, checkpoint: { every: 2 } });
  const teacher = new IResNet(tiny).eval();
  const centres = T.randn([5, 16]).mul(0.1).requiresGrad_().keep();
  const x = T.randn([6, 3, 112, 112]).keep();
  const y = T.tensor([0, 1, 2, 3, 4, 0], { dtype: "i64" }).keep();
  const t = T.noGrad(() => teacher.forward(x)).keep();
  const margin = CombinedMargin.preset("cosface", { s: 16 });
  const opt = new LARS([...student.parameters(), centres], {
    lr: 2,
    weightDecay: 5e-4,
    trustCoefficient: 0.02,
  });
  const sched = new LRScheduler(opt, { warmupIters: 2, totalIters: 12, decay: { kind: "poly" } });
  const losses: number[] = [];
  const live: number[] = [];
  for (let step = 0; step < 8; step++) {
    const loss = T.scope(() => {
      opt.zeroGrad();
      const emb = student.forward(x);
      const cos = T.normalize(emb).matmul(T.normalize(centres).T).clamp(-1, 1);
      const total = distillationLoss(margin.loss(cos, y), featureDistill(emb, t));
      student.tape.backwardFrom(total);
      clipGradNorm(opt.groups[0]!.params, 5);
      opt.step();
      sched.step();
      return total.item();
    });
    losses.push(loss);
    live.push(native.liveCount());
  }
  assert.ok(losses.every(Number.isFinite));
  assert.ok(losses.at(-1)! < losses[0]!, `loss ${losses[0]} -> ${losses.at(-1)}`);
  assert.equal(live.at(-1), live[2], `live tensors per step: ${live.join(", ")}`);
  student.dispose();
  teacher.dispose();
});
