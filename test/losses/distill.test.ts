// Feature distillation: the closed form, its gradient, a frozen teacher, and both weightings.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/torch/index.ts";
import { CHALLENGE_DISTILL_LAMBDA, distillationLoss, featureDistill } from "../../src/losses/index.ts";

test("featureDistill is the batch mean of ‖t/‖t‖ − s/‖s‖‖²", () => {
  T.scope(() => {
    const s = T.tensor(
      [
        [3, 4],
        [1, 0],
      ],
      { dtype: "f64" },
    );
    const t = T.tensor(
      [
        [0, 2],
        [0, -5],
      ],
      { dtype: "f64" },
    );
    // row 0: (0.6, 0.8) vs (0, 1): 0.36 + 0.04 = 0.4; row 1: (1, 0) vs (0, -1): 2.
    assert.ok(Math.abs(featureDistill(s, t).item() - 1.2) < 1e-12);
    assert.ok(Math.abs(featureDistill(t, t).item()) < 1e-12);
  });
});

test("featureDistill's gradient matches finite differences and never reaches the teacher", () => {
  T.scope(() => {
    T.manualSeed(2);
    const s0 = T.randn([5, 8], { dtype: "f64" });
    const t = T.randn([5, 8], { dtype: "f64" }).requiresGrad_();
    const s = s0.detach().requiresGrad_();
    featureDistill(s, t).backward();
    assert.equal(t.grad, undefined);
    const eps = 1e-6;
    const v = T.randnLike(s0);
    const f = (x: T.Tensor): number => T.noGrad(() => featureDistill(x, t).item());
    const numeric = (f(s0.add(v.mul(eps))) - f(s0.sub(v.mul(eps)))) / (2 * eps);
    const analytic = s.grad!.mul(v).sum().item();
    assert.ok(Math.abs(numeric - analytic) < 1e-7, `${analytic} vs ${numeric}`);
  });
});

test("total loss: CE + λ·distill with the challenge's λ = 9, or α·CE + (1 − α)·distill", () => {
  T.scope(() => {
    const ce = T.scalarTensor(2);
    const d = T.scalarTensor(0.5);
    assert.equal(CHALLENGE_DISTILL_LAMBDA, 9);
    assert.equal(distillationLoss(ce, d).item(), 6.5);
    assert.equal(distillationLoss(ce, d, { lambda: 1 }).item(), 2.5);
    assert.equal(distillationLoss(ce, d, { alpha: 0.25 }).item(), 0.875);
    assert.throws(() => distillationLoss(ce, d, { alpha: 2 }), /alpha/);
    assert.throws(() => featureDistill(T.zeros([2, 3]), T.zeros([2, 4])), /same \[N, D\]/);
  });
});
