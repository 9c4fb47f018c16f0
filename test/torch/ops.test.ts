// Ops against closed forms computed in plain JS, and their gradients against finite differences.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/torch/index.ts";
import { assertClose, gradcheck } from "../helpers/numeric.ts";

T.manualSeed(1234);
const f64 = (shape: number[]): T.Tensor => T.randn(shape, { dtype: "f64" });
const arr = (t: T.Tensor): number[] => t.toArray();

function naiveConv2d(
  x: number[],
  xs: number[],
  w: number[],
  ws: number[],
  b: number[],
  stride: number,
  pad: number,
) {
  const [n, c, h, wd] = xs as [number, number, number, number];
  const [o, , kh, kw] = ws as [number, number, number, number];
  const oh = Math.floor((h + 2 * pad - kh) / stride) + 1;
  const ow = Math.floor((wd + 2 * pad - kw) / stride) + 1;
  const out: number[] = [];
  for (let ni = 0; ni < n; ni++)
    for (let oi = 0; oi < o; oi++)
      for (let y = 0; y < oh; y++)
        for (let xx = 0; xx < ow; xx++) {
          let s = b[oi] ?? 0;
          for (let ci = 0; ci < c; ci++)
            for (let ky = 0; ky < kh; ky++)
              for (let kx = 0; kx < kw; kx++) {
                const iy = y * stride - pad + ky;
                const ix = xx * stride - pad + kx;
                if (iy < 0 || ix < 0 || iy >= h || ix >= wd) continue;
                s += x[((ni * c + ci) * h + iy) * wd + ix]! * w[((oi * c + ci) * kh + ky) * kw + kx]!;
              }
          out.push(s);
        }
  return { out, shape: [n, o, oh, ow] };
}

describe("closed forms", () => {
  test("conv2d equals a direct convolution (stride 2, padding 1, bias)", () => {
    const x = f64([2, 3, 7, 6]);
    const w = f64([4, 3, 3, 3]);
    const b = f64([4]);
    const y = T.conv2d(x, w, b, { stride: 2, padding: 1 });
    const ref = naiveConv2d(arr(x), [2, 3, 7, 6], arr(w), [4, 3, 3, 3], arr(b), 2, 1);
    assert.deepEqual(y.shape, ref.shape);
    assertClose(arr(y), ref.out, 1e-12, "conv2d");
  });

  test("linear and matmul equal x·Wᵀ + b", () => {
    const x = f64([3, 5]);
    const w = f64([4, 5]);
    const b = f64([4]);
    const xa = arr(x);
    const wa = arr(w);
    const ba = arr(b);
    const ref: number[] = [];
    for (let i = 0; i < 3; i++)
      for (let o = 0; o < 4; o++) {
        let s = ba[o]!;
        for (let k = 0; k < 5; k++) s += xa[i * 5 + k]! * wa[o * 5 + k]!;
        ref.push(s);
      }
    assertClose(arr(T.linear(x, w, b)), ref, 1e-12, "linear");
    assertClose(arr(x.matmul(w.T).add(b)), ref, 1e-12, "matmul");
    assertClose(arr(x.mm(w.T).add(b)), ref, 1e-12, "mm");
  });

  test("softmax, log-softmax and cross-entropy", () => {
    const x = f64([4, 6]);
    const labels = T.tensor([0, 5, 2, 2], { dtype: "i64" });
    const xa = arr(x);
    const sm: number[] = [];
    let ce = 0;
    for (let i = 0; i < 4; i++) {
      const row = xa.slice(i * 6, i * 6 + 6);
      const m = Math.max(...row);
      const z = row.reduce((a, v) => a + Math.exp(v - m), 0);
      row.forEach((v) => sm.push(Math.exp(v - m) / z));
      ce -= Math.log(Math.exp(row[[0, 5, 2, 2][i]!]! - m) / z);
    }
    assertClose(arr(x.softmax(1)), sm, 1e-12, "softmax");
    assertClose(arr(x.logSoftmax(1)), sm.map(Math.log), 1e-12, "log_softmax");
    assertClose([T.crossEntropy(x, labels).item()], [ce / 4], 1e-12, "cross_entropy");
    assertClose([T.nllLoss(x.logSoftmax(1), labels, { reduction: "sum" }).item()], [ce], 1e-12, "nll_loss");
    // ignore_index drops a sample from the mean
    const ign = T.tensor([0, -100, 2, 2], { dtype: "i64" });
    const kept = T.crossEntropy(x, ign, { reduction: "none" }).toArray();
    assert.equal(kept[1], 0);
  });

  test("batch norm in training normalises with batch statistics and updates running stats", () => {
    const x = f64([8, 3, 2, 2]);
    const rm = T.zeros([3], { dtype: "f64" });
    const rv = T.ones([3], { dtype: "f64" });
    const weight = T.tensor([1, 2, 3], { dtype: "f64" });
    const bias = T.tensor([0, -1, 1], { dtype: "f64" });
    const y = T.batchNorm(x, {
      weight,
      bias,
      runningMean: rm,
      runningVar: rv,
      training: true,
      momentum: 0.1,
      eps: 1e-5,
    });
    const xa = arr(x);
    const ya = arr(y);
    for (let c = 0; c < 3; c++) {
      const vals: number[] = [];
      const idx: number[] = [];
      for (let n = 0; n < 8; n++) for (let s = 0; s < 4; s++) idx.push((n * 3 + c) * 4 + s);
      for (const i of idx) vals.push(xa[i]!);
      const mean = vals.reduce((a, v) => a + v, 0) / vals.length;
      const biased = vals.reduce((a, v) => a + (v - mean) ** 2, 0) / vals.length;
      const unbiased = (biased * vals.length) / (vals.length - 1);
      const w = [1, 2, 3][c]!;
      const b = [0, -1, 1][c]!;
      assertClose(
        idx.map((i) => ya[i]!),
        vals.map((v) => ((v - mean) / Math.sqrt(biased + 1e-5)) * w + b),
        1e-10,
        `bn channel ${c}`,
      );
      assertClose([arr(rm)[c]!], [0.1 * mean], 1e-12, "running_mean");
      assertClose([arr(rv)[c]!], [0.9 + 0.1 * unbiased], 1e-12, "running_var");
    }
  });

  test("batch norm in eval uses running statistics", () => {
    const x = f64([4, 2]);
    const rm = T.tensor([0.5, -1], { dtype: "f64" });
    const rv = T.tensor([2, 0.25], { dtype: "f64" });
    const y = T.batchNorm(x, { runningMean: rm, runningVar: rv, training: false, eps: 1e-5 });
    const xa = arr(x);
    assertClose(
      arr(y),
      xa.map((v, i) => (v - [0.5, -1][i % 2]!) / Math.sqrt([2, 0.25][i % 2]! + 1e-5)),
      1e-12,
      "bn eval",
    );
    assertClose(arr(rm), [0.5, -1], 0, "running mean untouched");
  });

  test("prelu: x for x>0, a·x otherwise, per channel", () => {
    const x = f64([2, 3, 2, 2]);
    const a = T.tensor([0.25, -0.5, 2], { dtype: "f64" });
    const xa = arr(x);
    assertClose(
      arr(T.prelu(x, a)),
      xa.map((v, i) => (v > 0 ? v : v * [0.25, -0.5, 2][Math.floor(i / 4) % 3]!)),
      1e-12,
      "prelu",
    );
  });

  test("normalize gives unit rows in the same direction", () => {
    const x = f64([5, 7]);
    const y = T.normalize(x);
    assertClose(arr(y.norm(2, 1)), [1, 1, 1, 1, 1], 1e-12, "norms");
    const xa = arr(x);
    const n0 = Math.hypot(...xa.slice(0, 7));
    assertClose(
      arr(y).slice(0, 7),
      xa.slice(0, 7).map((v) => v / n0),
      1e-12,
      "row 0",
    );
  });

  test("gather, scatter, scatter_add, index_select, index_add, advanced index", () => {
    const x = T.tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const idx = T.tensor(
      [
        [2, 0],
        [1, 1],
      ],
      { dtype: "i64" },
    );
    assert.deepEqual(x.gather(1, idx).toArray(), [3, 1, 5, 5]);
    assert.deepEqual(
      T.zeros([2, 3])
        .scatter(
          1,
          idx,
          T.tensor([
            [10, 20],
            [30, 40],
          ]),
        )
        .toArray(),
      [20, 0, 10, 0, 40, 0],
    );
    assert.deepEqual(
      T.zeros([2, 3])
        .scatterAdd(1, idx, T.ones([2, 2]))
        .toArray(),
      [1, 0, 1, 0, 2, 0],
    );
    const rows = T.tensor([1, 1, 0], { dtype: "i64" });
    assert.deepEqual(x.indexSelect(0, rows).toArray(), [4, 5, 6, 4, 5, 6, 1, 2, 3]);
    assert.deepEqual(
      T.zeros([2, 3])
        .indexAdd(0, rows, T.ones([3, 3]))
        .toArray(),
      [1, 1, 1, 2, 2, 2],
    );
    assert.deepEqual(x.index(null, T.tensor([2, 0], { dtype: "i64" })).toArray(), [3, 1, 6, 4]);
    assert.deepEqual(x.index(1, [0, 3, 2]).toArray(), [4, 6]);
    assert.deepEqual(x.index(null, [null, null, 2]).toArray(), [1, 3, 4, 6]);
    assert.deepEqual(x.index([-1, null]).toArray(), [4, 5, 6]);
    assert.equal(x.index(0, 1).item(), 2);
  });

  test("integer scalars keep integer tensors integer; fractional ones promote", () => {
    const i = T.tensor([1, 2], { dtype: "i64" });
    assert.equal(i.add(1).dtype, "i64");
    assert.equal(i.add(0.5).dtype, "f32");
    assert.deepEqual(i.mul(3).toArray(), [3, 6]);
  });
});

describe("gradients against finite differences (f64)", () => {
  test("conv2d (input, weight, bias)", () => {
    gradcheck(
      (x, w, b) => T.conv2d(x!, w!, b, { stride: 2, padding: 1 }),
      [f64([2, 3, 5, 5]), f64([4, 3, 3, 3]), f64([4])],
    );
  });
  test("batch norm, training (input, weight, bias)", () => {
    gradcheck(
      (x, w, b) => T.batchNorm(x!, { weight: w, bias: b, training: true }),
      [f64([4, 3, 2, 2]), f64([3]), f64([3])],
    );
  });
  test("batch norm, eval", () => {
    const rm = f64([3]);
    const rv = T.rand([3], { dtype: "f64" }).add(0.5);
    gradcheck(
      (x, w, b) => T.batchNorm(x!, { weight: w, bias: b, runningMean: rm, runningVar: rv, training: false }),
      [f64([4, 3, 2, 2]), f64([3]), f64([3])],
    );
  });
  test("prelu", () => {
    gradcheck((x, a) => T.prelu(x!, a!), [f64([3, 4, 2, 2]), f64([4])]);
  });
  test("linear and matmul", () => {
    gradcheck((x, w, b) => T.linear(x!, w!, b), [f64([3, 5]), f64([4, 5]), f64([4])]);
    gradcheck((a, b) => a!.matmul(b!), [f64([2, 3, 4]), f64([4, 5])]);
  });
  test("normalize, softmax, log-softmax", () => {
    gradcheck((x) => T.normalize(x!), [f64([4, 6])]);
    gradcheck((x) => x!.softmax(1), [f64([4, 6])]);
    gradcheck((x) => x!.logSoftmax(0), [f64([4, 6])]);
  });
  test("cross-entropy", () => {
    const labels = T.tensor([1, 0, 3], { dtype: "i64" });
    gradcheck((x) => T.crossEntropy(x!, labels), [f64([3, 5])]);
    gradcheck((x) => T.crossEntropy(x!, labels, { labelSmoothing: 0.1 }), [f64([3, 5])]);
  });
  test("gather, scatter_add, index_select, advanced index", () => {
    const idx = T.tensor(
      [
        [0, 2, 2],
        [1, 1, 0],
      ],
      { dtype: "i64" },
    );
    gradcheck((x) => x!.gather(1, idx), [f64([2, 3])]);
    gradcheck((x, s) => x!.scatterAdd(1, idx, s!), [f64([2, 4]), f64([2, 3])]);
    const rows = T.tensor([2, 0, 2], { dtype: "i64" });
    gradcheck((x) => x!.indexSelect(0, rows), [f64([3, 4])]);
    gradcheck((x) => x!.index(null, rows), [f64([2, 3])]);
  });
});

describe("bf16 autocast", () => {
  // Tolerances are derived, not tuned: each result computed from bf16 inputs is compared with the
  // same maths in f64 on the same bf16-rounded inputs, so what remains is the kernel's own
  // rounding, measured against the same computation on absolute values (so that cancellation
  // cannot inflate it). oneDNN's bf16 kernels accumulate in f32 (error ≤ n·2^-24 of the absolute
  // sum over a reduction of length n) and round the result to bf16 once (≤ u = 2^-8, to nearest or
  // not); 2u more allows for kernels that convert their inputs themselves. The bound is the same on
  // CPUs with and without native bf16 instructions (AVX-512 or AVX2 only), and a wrong sign or
  // scale overshoots it by an order of magnitude.
  const u = 2 ** -8;
  const bound = (n: number): number => 3 * u + n * 2 ** -24;
  const bf16Exact = (t: T.Tensor): T.Tensor => t.to("bf16").to("f64");
  const relToAbs = (got: T.Tensor, ref: T.Tensor, absRef: T.Tensor): number =>
    got.to("f64").sub(ref).norm().item() / absRef.norm().item();

  for (const seed of [11, 12, 13]) {
    test(`conv and linear run in bf16; f32 leaves get gradients within bf16's bound (seed ${seed})`, () => {
      T.manualSeed(seed);
      const [n, c, k, hw, classes] = [4, 3, 5, 8, 2];
      const x = T.randn([n, c, hw, hw]);
      const w = T.randn([k, c, 3, 3]).mul(0.3).requiresGrad_();
      const lw = T.randn([classes, k * hw * hw])
        .mul(0.05)
        .requiresGrad_();
      const gy = T.randn([n, k, hw, hw]);
      const gz = T.randn([n, classes]);
      const got = T.autocast({ dtype: "bf16" }, () => {
        const y = T.conv2d(x, w, undefined, { padding: 1 });
        const z = T.linear(y.detach().float().flatten(1), lw);
        const [gw] = T.grad([y], [w], [gy]);
        const [glw] = T.grad([z], [lw], [gz]);
        return { y, z, gw: gw!, glw: glw! };
      });
      assert.equal(got.y.dtype, "bf16");
      assert.equal(got.z.dtype, "bf16");
      assert.equal(got.gw.dtype, "f32");
      assert.equal(got.glw.dtype, "f32");
      // References in f64 from the bf16-rounded inputs autocast fed the kernels; |·| twins for scale.
      const ref = (abs: boolean) => {
        const m = (t: T.Tensor): T.Tensor => (abs ? bf16Exact(t).abs() : bf16Exact(t));
        const wr = m(w.detach()).requiresGrad_();
        const lwr = m(lw.detach()).requiresGrad_();
        const y = T.conv2d(m(x), wr, undefined, { padding: 1 });
        const yIn = m(got.y.detach()); // the linear layer's input is the rounded conv output
        const z = T.linear(yIn.flatten(1), lwr);
        const [gw] = T.grad([y], [wr], [m(gy)]);
        const [glw] = T.grad([z], [lwr], [m(gz)]);
        return { y: y.detach(), z: z.detach(), gw: gw!, glw: glw! };
      };
      const [r, a] = [ref(false), ref(true)];
      const checks: [string, T.Tensor, keyof typeof r, number][] = [
        ["conv forward", got.y, "y", c * 9],
        ["linear forward", got.z, "z", k * hw * hw],
        ["conv weight gradient", got.gw, "gw", n * hw * hw],
        ["linear weight gradient", got.glw, "glw", n],
      ];
      for (const [what, value, key, len] of checks) {
        const err = relToAbs(value, r[key], a[key]);
        assert.ok(err < bound(len), `${what}: error ${err} against bound ${bound(len)} (reduction ${len})`);
      }
      // Outside the block autocast is off again.
      assert.equal(T.conv2d(x, w).dtype, "f32");
    });
  }

  test("softmax and cross-entropy under autocast agree with fp32 within bf16 precision", () => {
    T.manualSeed(21);
    const x = T.randn([6, 10]);
    const w = T.randn([10, 10]).requiresGrad_();
    const labels = T.randint(0, 10, [6]);
    const l32 = T.crossEntropy(x.matmul(w), labels);
    const l16 = T.autocast({}, () => T.crossEntropy(x.matmul(w), labels));
    assert.ok(Math.abs(l32.item() - l16.item()) < 0.05 * Math.abs(l32.item()) + 0.05);
    const [g32] = T.grad([l32], [w]);
    const [g16] = T.grad([l16], [w]);
    assert.ok(g16!.sub(g32!).norm().item() / g32!.norm().item() < 3e-2);
  });

  test("autocast rejects f16 on the CPU", () => {
    assert.throws(() => T.autocast({ dtype: "f16" }, () => 0), /CPU supports bf16 only/);
  });
});
