// Module: PyTorch's dotted names and state-dict order, strict loading that changes nothing on
// error, train/eval, and the layers' defaults.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/torch/index.ts";
import {
  BatchNorm1d,
  BatchNorm2d,
  Conv2d,
  Dropout,
  Flatten,
  Linear,
  Module,
  PReLU,
  Sequential,
} from "../../src/nn/index.ts";

class Block extends Module {
  readonly conv = this.registerModule("conv", new Conv2d(3, 4, 3, { padding: 1, bias: false }));
  readonly bn = this.registerModule("bn", new BatchNorm2d(4));
  readonly act = this.registerModule("act", new PReLU(4));
  forward(x: T.Tensor): T.Tensor {
    return this.act.forward(this.bn.forward(this.conv.forward(x)));
  }
}

class Net extends Module {
  readonly scale = this.registerParameter("scale", T.ones([1]));
  readonly body = this.registerModule(
    "body",
    new Sequential(new Block(), new Flatten(), new Linear(4 * 4 * 4, 2)),
  );
  forward(x: T.Tensor): T.Tensor {
    return this.body.forward(x).mul(this.scale);
  }
}

test("state dict keys and order follow PyTorch (own params, own buffers, then children)", () => {
  const net = new Net();
  assert.deepEqual(
    [...net.stateDict().keys()],
    [
      "scale",
      "body.0.conv.weight",
      "body.0.bn.weight",
      "body.0.bn.bias",
      "body.0.bn.running_mean",
      "body.0.bn.running_var",
      "body.0.bn.num_batches_tracked",
      "body.0.act.weight",
      "body.2.weight",
      "body.2.bias",
    ],
  );
  assert.equal(net.parameters().length, 7);
  assert.equal(net.numParameters(), 1 + 4 * 3 * 9 + 4 + 4 + 4 + 2 * 64 + 2);
  assert.ok(net.parameters().every((p) => p.requiresGrad));
});

test("loadStateDict copies values; strict errors name the keys and change nothing", () => {
  const a = new Net();
  const b = new Net();
  b.loadStateDict(a.stateDict());
  for (const [k, t] of a.stateDict()) assert.deepEqual(b.stateDict().get(k)!.toArray(), t.toArray(), k);
  const before = b.stateDict().get("body.2.weight")!.toArray();
  const bad = new Map(a.stateDict());
  bad.set("body.2.weight", T.zeros([3, 64]));
  assert.throws(
    () => b.loadStateDict(bad),
    /'body\.2\.weight' has shape \[3x64\] in the state dict, \[2x64\] in the model/,
  );
  const missing = new Map(a.stateDict());
  missing.delete("scale");
  missing.set("extra", T.ones([1]));
  assert.throws(() => b.loadStateDict(missing), /missing keys: scale; unexpected keys: extra/);
  const retyped = new Map(a.stateDict());
  retyped.set("body.2.weight", T.zeros([2, 64], { dtype: "i32" }));
  assert.throws(() => b.loadStateDict(retyped), /'body\.2\.weight' is stored as i32, the model's is f32/);
  assert.deepEqual(b.stateDict().get("body.2.weight")!.toArray(), before);
  const r = b.loadStateDict(missing, { strict: false });
  assert.deepEqual(r, { missing: ["scale"], unexpected: ["extra"] });
});

test("train/eval reach every submodule; BatchNorm counts batches only in training", () => {
  const net = new Net();
  const x = T.randn([2, 3, 4, 4]);
  net.forward(x);
  net.forward(x);
  const bn = net.stateDict();
  assert.equal(bn.get("body.0.bn.num_batches_tracked")!.item(), 2);
  net.eval();
  assert.ok(net.namedModules().every(([, m]) => !m.training));
  const mean = bn.get("body.0.bn.running_mean")!.toArray();
  const y1 = net.forward(x).toArray();
  const y2 = net.forward(x).toArray();
  assert.deepEqual(y1, y2);
  assert.deepEqual(bn.get("body.0.bn.running_mean")!.toArray(), mean);
  assert.equal(bn.get("body.0.bn.num_batches_tracked")!.item(), 2);
  net.train();
  assert.ok(net.namedModules().every(([, m]) => m.training));
});

test("layers check their input and follow torch.nn's defaults", () => {
  assert.throws(
    () => new BatchNorm2d(3).forward(T.ones([2, 3])),
    /BatchNorm2d: expected 4-D input, got \[2, 3\]/,
  );
  assert.equal(new BatchNorm1d(3).forward(T.randn([4, 3])).shape.join(), "4,3");
  assert.throws(() => new Conv2d(3, 4, 3, { groups: 2 }), /not divisible by groups=2/);
  assert.throws(() => new Dropout(1.5), /p must be in \[0, 1\]/);
  // kaiming_uniform(a=√5) bound = 1/√fan_in for Linear and Conv weights
  const lin = new Linear(100, 50);
  assert.ok(lin.weight.abs().max().item() <= 0.1 + 1e-6);
  assert.ok(lin.weight.abs().max().item() > 0.08);
  assert.equal(new PReLU(3).weight.toArray().join(), "0.25,0.25,0.25");
  const d = new Dropout(0.5).eval();
  assert.deepEqual(d.forward(T.ones([4])).toArray(), [1, 1, 1, 1]);
});

test("a training step through modules frees its intermediates and zeroGrad clears gradients", () => {
  const net = new Net();
  const loss = T.scope(() => {
    const l = net
      .forward(T.randn([2, 3, 4, 4]))
      .square()
      .mean();
    l.backward();
    return l.item();
  });
  assert.ok(Number.isFinite(loss));
  assert.ok(net.parameters().every((p) => p.grad !== undefined));
  net.zeroGrad();
  assert.ok(net.parameters().every((p) => p.grad === undefined));
});
