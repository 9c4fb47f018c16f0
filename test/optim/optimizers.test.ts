// SGD, AdamW and LARS against updates computed by hand (plain JS numbers, f64 tensors), and
// bit-exact optimizer state round trips through safetensors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import * as T from "../../src/torch/index.ts";
import { BatchNorm1d, Linear, PReLU, Sequential } from "../../src/nn/index.ts";
import {
  AdamW,
  LARS,
  type Optimizer,
  SGD,
  decayGroups,
  optimizerStateFromTensors,
  optimizerStateToTensors,
} from "../../src/optim/index.ts";

const f64 = (v: number[], shape?: number[]): T.Tensor =>
  T.tensor(v, { dtype: "f64", shape: shape ?? [v.length] })
    .requiresGrad_()
    .keep();

function close(actual: number[], expected: number[], what: string): void {
  assert.equal(actual.length, expected.length, what);
  actual.forEach((a, i) =>
    assert.ok(Math.abs(a - expected[i]!) < 1e-12, `${what}[${i}]: ${a} vs ${expected[i]}`),
  );
}

/** Runs `steps` updates with gradient grads[k] at step k. */
function drive(opt: Optimizer<Record<string, number | boolean>>, p: T.Tensor, grads: number[][]): void {
  for (const g of grads) {
    p.grad = T.tensor(g, { dtype: "f64", shape: [...p.shape] });
    opt.step();
  }
}

test("SGD: momentum, dampening, weight decay and Nesterov by hand", () => {
  const g = [
    [0.5, -1],
    [0.25, 0.75],
  ];
  for (const nesterov of [false, true]) {
    const p = f64([1, 2]);
    drive(new SGD([p], { lr: 0.1, momentum: 0.9, weightDecay: 0.01, nesterov }), p, g);
    // Hand computation: d = g + wd·p; buf = d (step 1), 0.9·buf + d; step = nesterov ? d + 0.9·buf : buf.
    let w = [1, 2];
    let buf: number[] = [];
    g.forEach((gk, k) => {
      const d = gk.map((x, i) => x + 0.01 * w[i]!);
      buf = k === 0 ? d : buf.map((b, i) => 0.9 * b + d[i]!);
      const s = nesterov ? d.map((x, i) => x + 0.9 * buf[i]!) : buf;
      w = w.map((x, i) => x - 0.1 * s[i]!);
    });
    close(p.toArray(), w, `nesterov=${nesterov}`);
    p.dispose();
  }
  const p = f64([1]);
  drive(new SGD([p], { lr: 1, momentum: 0.5, dampening: 0.5 }), p, [[1], [1]]);
  close(p.toArray(), [1 - 1 - (0.5 + 0.5)], "dampening");
  assert.throws(() => new SGD([p], { lr: 1, nesterov: true }), /nesterov/);
});

test("AdamW (and AMSGrad) by hand", () => {
  const g = [
    [0.5, -1],
    [0.1, 0.2],
    [-0.3, 0.4],
  ];
  for (const amsgrad of [false, true]) {
    const p = f64([1, -2]);
    drive(new AdamW([p], { lr: 0.01, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1, amsgrad }), p, g);
    let w = [1, -2];
    let m = [0, 0];
    let v = [0, 0];
    let vmax = [0, 0];
    g.forEach((gk, k) => {
      const t = k + 1;
      w = w.map((x) => x * (1 - 0.01 * 0.1));
      m = m.map((x, i) => 0.9 * x + 0.1 * gk[i]!);
      v = v.map((x, i) => 0.99 * x + 0.01 * gk[i]! * gk[i]!);
      vmax = vmax.map((x, i) => Math.max(x, v[i]!));
      const second = amsgrad ? vmax : v;
      w = w.map((x, i) => {
        const denom = Math.sqrt(second[i]!) / Math.sqrt(1 - 0.99 ** t) + 1e-8;
        return x - (0.01 / (1 - 0.9 ** t)) * (m[i]! / denom);
      });
    });
    close(p.toArray(), w, `amsgrad=${amsgrad}`);
    p.dispose();
  }
});

test("LARS: trust ratio η‖w‖/‖g + λw‖ on weights; biases and BN plain SGD with momentum", () => {
  const weight = f64([3, 4, 0, 0], [2, 2]);
  const bias = f64([1, -1]);
  const opt = new LARS([weight, bias], { lr: 0.5, momentum: 0.9, weightDecay: 0.1, trustCoefficient: 0.02 });
  const gw = [
    [0.3, -0.4, 1, 2],
    [0.1, 0.1, 0.1, 0.1],
  ];
  const gb = [
    [0.2, 0.4],
    [-0.2, 0.1],
  ];
  let w = [3, 4, 0, 0];
  let b = [1, -1];
  let bufW: number[] = [];
  let bufB: number[] = [];
  const norm = (x: number[]): number => Math.hypot(...x);
  for (let k = 0; k < 2; k++) {
    weight.grad = T.tensor(gw[k]!, { dtype: "f64", shape: [2, 2] });
    bias.grad = T.tensor(gb[k]!, { dtype: "f64" });
    opt.step();
    const d = gw[k]!.map((x, i) => x + 0.1 * w[i]!);
    const trust = (0.02 * norm(w)) / norm(d);
    const dw = d.map((x) => x * trust);
    bufW = k === 0 ? dw : bufW.map((x, i) => 0.9 * x + dw[i]!);
    bufB = k === 0 ? gb[k]! : bufB.map((x, i) => 0.9 * x + gb[k]![i]!);
    w = w.map((x, i) => x - 0.5 * bufW[i]!);
    b = b.map((x, i) => x - 0.5 * bufB[i]!);
  }
  close(weight.toArray(), w, "weight");
  close(bias.toArray(), b, "bias");
  // A zero weight (or zero update) keeps the ratio at 1.
  const z = f64([0, 0], [1, 2]);
  drive(new LARS([z], { lr: 1, momentum: 0 }), z, [[1, 2]]);
  close(z.toArray(), [-1, -2], "zero weight");
  // With the exclusion off, 1-D parameters adapt too.
  const v = f64([3, 4]);
  drive(new LARS([v], { lr: 1, momentum: 0, trustCoefficient: 0.1, excludeBnAndBias: false }), v, [[0, 10]]);
  close(v.toArray(), [3, 4 - 0.5], "1-D adapted");
});

test("LARS exempts BatchNorm γ/β, every bias and PReLU slopes: SGD with momentum, no weight decay", () => {
  T.manualSeed(3);
  const net = new Sequential(new Linear(4, 5), new BatchNorm1d(5), new PReLU(5), new Linear(5, 2));
  const named = net.namedParameters();
  const twins = named.map(([, p]) => p.clone().requiresGrad_().keep());
  const lars = new LARS(
    named.map(([, p]) => p),
    { lr: 0.3, momentum: 0.9, weightDecay: 0.1, trustCoefficient: 0.01 },
  );
  const sgd = new SGD(twins, { lr: 0.3, momentum: 0.9 });
  for (let k = 0; k < 2; k++) {
    named.forEach(([, p], i) => {
      const g = T.randn(p.shape);
      p.grad = g;
      twins[i]!.grad = g.clone();
    });
    lars.step();
    sgd.step();
  }
  const same = named.filter(([, p], i) => T.scope(() => p.sub(twins[i]!).abs().max().item()) === 0);
  assert.deepEqual(
    same.map(([k]) => k),
    ["0.bias", "1.weight", "1.bias", "2.weight", "3.bias"],
  );
  net.dispose();
});

test("decayGroups keeps weight decay off 1-D and frozen parameters", () => {
  const w = f64([1, 2, 3, 4], [2, 2]);
  const b = f64([1]);
  const frozen = f64([1]);
  frozen.requiresGrad = false;
  const groups = decayGroups(
    [
      ["w", w],
      ["b", b],
      ["f", frozen],
    ],
    5e-4,
    { momentum: 0.9 },
  );
  assert.deepEqual(
    groups.map((g) => g.params.length),
    [1, 1],
  );
  assert.deepEqual(
    groups.map((g) => g.options),
    [
      { momentum: 0.9, weightDecay: 5e-4 },
      { momentum: 0.9, weightDecay: 0 },
    ],
  );
  const opt = new SGD(groups, { lr: 0.1 });
  assert.equal(opt.groups[1]!.options.weightDecay, 0);
});

test("optimizer state round-trips bit-exactly through safetensors and training continues identically", () => {
  const tmp = mkdtempSync(path.join(tmpdir(), "mfr-optim-"));
  try {
    const makers: [string, (ps: T.Tensor[]) => Optimizer<Record<string, number | boolean>>][] = [
      ["sgd", (ps) => new SGD(ps, { lr: 0.05, momentum: 0.9, weightDecay: 5e-4, nesterov: true })],
      ["adamw", (ps) => new AdamW(ps, { lr: 1e-3, amsgrad: true })],
      ["lars", (ps) => new LARS(ps, { lr: 0.1, weightDecay: 5e-4 })],
    ];
    for (const [name, make] of makers) {
      T.manualSeed(9);
      const init = [T.randn([4, 3]), T.randn([3])];
      const target = T.randn([5, 3]).keep();
      const x = T.randn([5, 4]).keep();
      const params = (): T.Tensor[] => init.map((t) => t.clone().requiresGrad_().keep());
      const train = (ps: T.Tensor[], opt: Optimizer<Record<string, number | boolean>>, n: number): void => {
        for (let i = 0; i < n; i++)
          T.scope(() => {
            opt.zeroGrad();
            x.matmul(ps[0]!).add(ps[1]!).sub(target).square().sum().backward();
            opt.step();
          });
      };
      const a = params();
      const optA = make(a);
      train(a, optA, 3);
      const file = path.join(tmp, `${name}.safetensors`);
      const { tensors, metadata } = optimizerStateToTensors(optA.stateDict());
      a.forEach((p, i) => tensors.set(`param.${i}`, p));
      T.saveSafetensors(file, tensors, metadata);
      train(a, optA, 2);

      const loaded = T.loadSafetensors(file);
      const b = [0, 1].map((i) => loaded.tensors.get(`param.${i}`)!.clone().requiresGrad_().keep());
      const optB = make(b);
      optB.loadStateDict(optimizerStateFromTensors(loaded));
      train(b, optB, 2);
      a.forEach((p, i) =>
        assert.deepEqual(
          Buffer.from(p.data().buffer),
          Buffer.from(b[i]!.data().buffer),
          `${name}: param ${i}`,
        ),
      );
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
