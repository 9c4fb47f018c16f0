// Activation checkpointing: a checkpointed backbone gives the same gradients as a plain one,
// updates BatchNorm statistics once per forward, and a replayed segment redraws the same dropout.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/torch/index.ts";
import { CheckpointTape } from "../../src/nn/index.ts";
import { type CheckpointPolicy, IResNet } from "../../src/models/index.ts";

function maxAbs(a: T.Tensor, b: T.Tensor): number {
  return T.scope(() => a.to("f64").sub(b.to("f64")).abs().max().item());
}

const tiny = (checkpoint: CheckpointPolicy): IResNet =>
  new IResNet({ blocks: [2, 2, 1, 2], width: 1 / 8, numFeatures: 16, checkpoint });

test("checkpointed stages or every k blocks give identical gradients and BN statistics", () => {
  T.manualSeed(11);
  const plain = tiny(undefined);
  const start = new Map([...plain.stateDict()].map(([k, t]) => [k, t.clone().keep()]));
  const x0 = T.randn([4, 3, 112, 112]).keep();
  const w = T.randn([4, 16]).keep();
  const run = (m: IResNet): T.Tensor =>
    T.scope(() => {
      const x = x0.detach().requiresGrad_();
      const loss = m.forward(x).mul(w).sum();
      if (m.checkpoint) {
        assert.ok(m.tape.length > 0, "segments were recorded");
        m.tape.backwardFrom(loss);
        assert.equal(m.tape.length, 0, "the tape is empty after backward");
      } else {
        loss.backward();
      }
      return x.grad!.clone(); // p.grad is borrowed: it goes with x at the end of the scope
    });
  const refInputGrad = run(plain);
  const ref = plain.stateDict();
  for (const policy of ["stage", { every: 3 }, { every: 1 }] as const) {
    const what = JSON.stringify(policy);
    const m = tiny(policy);
    m.loadStateDict(start);
    assert.equal(maxAbs(run(m), refInputGrad), 0, `${what}: input gradient`);
    for (const [name, p] of m.namedParameters()) {
      if (p.requiresGrad) assert.equal(maxAbs(p.grad!, ref.get(name)!.grad!), 0, `${what}: grad of ${name}`);
    }
    // Running statistics and num_batches_tracked moved exactly once, as in the plain model.
    for (const [name, b] of m.namedBuffers()) assert.equal(maxAbs(b, ref.get(name)!), 0, `${what}: ${name}`);
    m.dispose();
  }
  plain.dispose();
});

test("no segments are recorded in eval mode or without gradients", () => {
  const m = tiny("stage");
  T.scope(() => {
    T.noGrad(() => m.forward(T.randn([2, 3, 112, 112])));
    assert.equal(m.tape.length, 0);
    m.eval().forward(T.randn([2, 3, 112, 112]));
    assert.equal(m.tape.length, 0);
  });
  m.dispose();
});

test("a replayed segment draws the same dropout mask and passes gradients on to its input", () => {
  T.scope(() => {
    const w = T.randn([6, 6]).requiresGrad_();
    const x0 = T.randn([5, 6]);
    const seg = (x: T.Tensor): T.Tensor => T.dropout(x.matmul(w).tanh(), 0.5, true);
    const grads = (checkpointed: boolean): T.Tensor[] => {
      w.grad = undefined;
      const x = x0.detach().requiresGrad_();
      const h = x.mul(2); // a non-leaf input: the replay must push the gradient through it
      T.manualSeed(5);
      const tape = new CheckpointTape();
      const y = checkpointed ? tape.run(seg, h) : seg(h);
      const z = checkpointed ? tape.run(seg, y) : seg(y);
      const loss = z.square().sum();
      if (checkpointed) tape.backwardFrom(loss);
      else loss.backward();
      return [w.grad!.clone(), x.grad!.clone()]; // borrowed: the next call resets w.grad
    };
    const [wa, xa] = grads(false);
    const [wb, xb] = grads(true);
    assert.equal(maxAbs(wa!, wb!), 0);
    assert.equal(maxAbs(xa!, xb!), 0);
  });
});
