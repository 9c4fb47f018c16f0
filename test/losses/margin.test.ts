// Margin losses: forward and backward against arcface_torch's CombinedMarginLoss (reference
// values from PyTorch, fixtures/losses/make_fixture.py), closed forms and finite differences.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as T from "../../src/torch/index.ts";
import { CombinedMargin, type CombinedMarginOptions } from "../../src/losses/index.ts";

const fixture = (f: string): string => new URL(`../fixtures/losses/${f}`, import.meta.url).pathname;
const cases = JSON.parse(readFileSync(fixture("cases.json"), "utf8")) as Record<
  string,
  { s: number; m1: number; m2: number; m3: number; threshold: number }
>;

function maxAbs(a: T.Tensor, b: T.Tensor): number {
  return T.scope(() => a.sub(b).abs().max().item());
}

for (const [name, h] of Object.entries(cases)) {
  test(`${name}: margin logits, loss and gradient match arcface_torch`, () => {
    T.scope(() => {
      const cos = T.loadNpy(fixture("cosines.npy")).requiresGrad_();
      const labels = T.loadNpy(fixture("labels.npy"));
      const m = new CombinedMargin({ ...h, interclassFilteringThreshold: h.threshold });
      const out = m.apply(cos, labels.unsqueeze(1));
      assert.ok(maxAbs(out, T.loadNpy(fixture(`${name}_margin_logits.npy`))) <= 1e-4, "margin logits");
      const loss = m.loss(cos, labels);
      const want = T.loadNpy(fixture(`${name}_loss.npy`)).item();
      assert.ok(Math.abs(loss.item() - want) <= 1e-5 * Math.abs(want), `loss ${loss.item()} vs ${want}`);
      loss.backward();
      const g = cos.grad!;
      assert.ok(
        maxAbs(g, T.loadNpy(fixture(`${name}_grad.npy`))) <= 1e-5,
        `grad diff ${maxAbs(g, T.loadNpy(fixture(`${name}_grad.npy`)))}`,
      );
    });
  });
}

/** Closed form of one row's margin logits in plain numbers. */
function closedForm(
  row: number[],
  label: number,
  o: Required<Omit<CombinedMarginOptions, "angularGradient" | "interclassFilteringThreshold">>,
): number[] {
  return row.map((c, j) => o.s * (j === label ? Math.cos(o.m1 * Math.acos(c) + o.m2) - o.m3 : c));
}

test("presets and the combined form match the closed form cos(m1·θ + m2) − m3", () => {
  T.scope(() => {
    const rows = [
      [0.3, -0.2, 0.8, 0.1],
      [0.5, 0.9, -0.7, 0.0],
      [0.2, 0.2, 0.2, 0.2],
    ];
    const labels = [2, 1, -1];
    const x = T.tensor(rows, { dtype: "f64" });
    const y = T.tensor(labels, { dtype: "i64" });
    const variants = {
      cosface: { s: 64, m1: 1, m2: 0, m3: 0.4 },
      arcface: { s: 64, m1: 1, m2: 0.5, m3: 0 },
      sphereface: { s: 30, m1: 1.35, m2: 0, m3: 0 },
      combined: { s: 64, m1: 1.0, m2: 0.3, m3: 0.2 },
    };
    for (const [name, o] of Object.entries(variants)) {
      const m =
        name === "cosface" || name === "arcface" ? CombinedMargin.preset(name) : new CombinedMargin(o);
      assert.deepEqual([m.s, m.m1, m.m2, m.m3], [o.s, o.m1, o.m2, o.m3], name);
      const got = m.apply(x, y).toArray();
      const want = rows.flatMap((r, i) => closedForm(r, labels[i]!, o));
      got.forEach((v, k) => assert.ok(Math.abs(v - want[k]!) < 1e-9, `${name}[${k}]: ${v} vs ${want[k]}`));
    }
  });
});

test("backward: s·(softmax − onehot)/N on labelled rows, zero on rows labelled -1 (straight-through angle)", () => {
  T.scope(() => {
    const x = T.rand([6, 5], { dtype: "f64" }).mul(1.6).sub(0.8).requiresGrad_();
    const y = T.tensor([0, 3, -1, 4, 1, -1], { dtype: "i64" });
    for (const m of [CombinedMargin.preset("arcface"), CombinedMargin.preset("cosface")]) {
      x.grad = undefined;
      m.loss(x, y).backward();
      const logits = T.noGrad(() => m.apply(x, y));
      const p = logits.softmax(1);
      const onehot = T.oneHot(y.clamp(0), 5).to("f64");
      const valid = y.ne(-1).to("f64").unsqueeze(1);
      const want = p
        .sub(onehot)
        .mul(valid)
        .mul(m.s / 4);
      assert.ok(maxAbs(x.grad!, want) < 1e-12, `max diff ${maxAbs(x.grad!, want)}`);
    }
  });
});

test("exact angular gradients and CosFace agree with central finite differences", () => {
  T.scope(() => {
    T.manualSeed(7);
    const x0 = T.rand([4, 6], { dtype: "f64" }).mul(1.6).sub(0.8);
    const y = T.tensor([1, 5, -1, 0], { dtype: "i64" });
    const variants: CombinedMarginOptions[] = [
      { s: 64, m3: 0.4 },
      { s: 64, m2: 0.5, angularGradient: "exact" },
      { s: 30, m1: 1.35, angularGradient: "exact" },
      { s: 64, m2: 0.3, m3: 0.2, angularGradient: "exact", interclassFilteringThreshold: 0.5 },
    ];
    for (const o of variants) {
      const m = new CombinedMargin(o);
      const x = x0.detach().requiresGrad_();
      m.loss(x, y).backward();
      const eps = 1e-6;
      for (let d = 0; d < 3; d++) {
        const v = T.randnLike(x0);
        const f = (t: T.Tensor): number => T.noGrad(() => m.loss(t, y).item());
        const numeric = (f(x0.add(v.mul(eps))) - f(x0.sub(v.mul(eps)))) / (2 * eps);
        const analytic = x.grad!.mul(v).sum().item();
        assert.ok(
          Math.abs(numeric - analytic) <= 1e-5 * Math.max(1, Math.abs(analytic)),
          `${JSON.stringify(o)}: ${analytic} vs ${numeric}`,
        );
      }
    }
  });
});

test("inter-class filtering zeroes non-target cosines above the threshold, never the target", () => {
  T.scope(() => {
    const x = T.tensor(
      [
        [0.9, 0.5, 0.1],
        [0.7, 0.8, 0.2],
      ],
      { dtype: "f64" },
    );
    const y = T.tensor([0, -1], { dtype: "i64" });
    const m = new CombinedMargin({ s: 1, m3: 0.1, interclassFilteringThreshold: 0.6 });
    assert.deepEqual(
      m
        .apply(x, y)
        .toArray()
        .map((v) => Math.round(v * 1e9) / 1e9),
      [0.8, 0.5, 0.1, 0, 0, 0.2],
    );
  });
});

test("the input logits are left untouched and bad labels are named", () => {
  T.scope(() => {
    const x = T.tensor([[0.1, 0.2]]);
    CombinedMargin.preset("arcface").apply(x, T.tensor([1], { dtype: "i64" }));
    assert.deepEqual(
      x.toArray().map((v) => Math.round(v * 1e6) / 1e6),
      [0.1, 0.2],
    );
    const m = CombinedMargin.preset("cosface");
    assert.throws(() => m.apply(x, T.tensor([2], { dtype: "i64" })), /labels must be in \[0, 2\) or -1/);
    assert.throws(() => m.apply(x, T.tensor([[0, 1]], { dtype: "i64" })), /labels must be \[1\] or \[1, 1\]/);
    assert.throws(
      () => new CombinedMargin({ s: 64, interclassFilteringThreshold: 1.5 }),
      /FilteringThreshold/,
    );
  });
});
