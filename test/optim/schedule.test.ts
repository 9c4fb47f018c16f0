// Learning-rate schedules (warm-up, poly, cosine, multi-step; per iteration, per group) and
// gradient clipping by global norm.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/torch/index.ts";
import { LRScheduler, SGD, clipGradNorm, linearScaledLr, lrFactor } from "../../src/optim/index.ts";

const near = (a: number, b: number, what = ""): void =>
  assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

test("linear warm-up then polynomial, cosine and multi-step decay", () => {
  const base = { warmupIters: 4, totalIters: 14 };
  const poly = { ...base, decay: { kind: "poly", power: 2 } } as const;
  assert.deepEqual(
    [0, 1, 2, 3].map((i) => lrFactor(poly, i)),
    [0.25, 0.5, 0.75, 1],
  );
  near(lrFactor(poly, 4), 1, "decay starts at 1");
  near(lrFactor(poly, 9), 0.25, "poly half-way: (1 − 0.5)²");
  near(lrFactor(poly, 14), 0, "poly end");
  near(lrFactor(poly, 99), 0, "past the end");
  const cos = { ...base, decay: { kind: "cosine", minFactor: 0.1 } } as const;
  near(lrFactor(cos, 9), 0.55, "cosine half-way");
  near(lrFactor(cos, 14), 0.1, "cosine end");
  const ms = { ...base, decay: { kind: "multistep", milestones: [6, 10], gamma: 0.1 } } as const;
  assert.deepEqual(
    [5, 6, 9, 10, 13].map((i) => lrFactor(ms, i)),
    [1, 0.1, 0.1, 0.1 ** 2, 0.1 ** 2],
  );
  const start = { ...base, warmupStartFactor: 0, decay: { kind: "constant" } } as const;
  assert.deepEqual(
    [0, 1, 3, 4].map((i) => lrFactor(start, i)),
    [0, 1 / 3, 1, 1],
  );
  near(linearScaledLr(0.01, 256 * 64), 0.64, "linear scaling");
});

test("the scheduler sets every group's lr per iteration and resumes from its state dict", () => {
  const a = T.zeros([2]).requiresGrad_().keep();
  const b = T.zeros([2]).requiresGrad_().keep();
  const opt = new SGD([{ params: [a] }, { params: [b], options: { lr: 0.3 } }], { lr: 0.1 });
  const o = { warmupIters: 2, totalIters: 10, decay: { kind: "cosine" } } as const;
  const s = new LRScheduler(opt, o);
  near(s.lr, 0.05, "iteration 0 is set at construction");
  const seen: number[][] = [];
  for (let i = 0; i < 5; i++) {
    seen.push(opt.groups.map((g) => g.options.lr));
    s.step();
  }
  seen.forEach(([la, lb], i) => {
    near(la!, 0.1 * lrFactor(o, i), `group 0 at ${i}`);
    near(lb!, 0.3 * lrFactor(o, i), `group 1 at ${i}`);
  });
  const opt2 = new SGD([{ params: [a] }, { params: [b], options: { lr: 0.3 } }], { lr: 0.1 });
  const s2 = new LRScheduler(opt2, o);
  s2.loadStateDict(JSON.parse(JSON.stringify(s.stateDict())) as ReturnType<LRScheduler["stateDict"]>);
  assert.deepEqual(
    opt2.groups.map((g) => g.options.lr),
    opt.groups.map((g) => g.options.lr),
  );
  assert.throws(
    () => new LRScheduler(opt, { warmupIters: 5, totalIters: 5, decay: { kind: "constant" } }),
    /warmupIters/,
  );
});

test("clipGradNorm scales all gradients by maxNorm / total norm (as torch.nn.utils.clip_grad_norm_)", () => {
  T.scope(() => {
    const p = T.zeros([2], { dtype: "f64" }).requiresGrad_();
    const q = T.zeros([1], { dtype: "f64" }).requiresGrad_();
    const none = T.zeros([1], { dtype: "f64" }).requiresGrad_();
    p.grad = T.tensor([3, 0], { dtype: "f64" });
    q.grad = T.tensor([4], { dtype: "f64" });
    const total = clipGradNorm([p, q, none], 1);
    near(total.item(), 5, "total norm");
    const c = 1 / (5 + 1e-6);
    assert.deepEqual([...p.grad.toArray(), ...q.grad.toArray()], [3 * c, 0, 4 * c]);
    // Under the limit: untouched. Infinity norm: the largest magnitude.
    near(clipGradNorm([p, q], 10).item(), 5 * c, "second call sees the clipped norm");
    assert.deepEqual([...p.grad.toArray(), ...q.grad.toArray()], [3 * c, 0, 4 * c]);
    q.grad = T.tensor([-7], { dtype: "f64" });
    near(clipGradNorm([p, q], 100, { normType: Infinity }).item(), 7, "inf norm");
    q.grad = T.tensor([NaN], { dtype: "f64" });
    assert.throws(() => clipGradNorm([q], 1, { errorIfNonfinite: true }), /NaN/);
  });
});
