// SGD.stepRows (the fused head's update in row blocks, dense or given the sampled rows alone)
// equals SGD.step on the dense gradient, over two steps (the first sets the momentum buffer), for
// plain SGD, momentum with decay, dampening and Nesterov.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/torch/index.ts";
import { SGD, type SGDOptions } from "../../src/optim/index.ts";

const settings: (Partial<SGDOptions> & { lr: number })[] = [
  { lr: 0.1 },
  { lr: 0.1, weightDecay: 5e-4 },
  { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 },
  { lr: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 1e-3 },
  { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4 },
];

for (const h of settings) {
  test(`SGD.stepRows equals SGD.step: ${JSON.stringify(h)}`, () =>
    T.scope(() => {
      T.manualSeed(3);
      const init = T.randn([10, 4]);
      const ref = init.clone();
      const [dense, sparse] = [init.clone(), init.clone()];
      const opts = [ref, dense, sparse].map((p) => new SGD([p], h));
      const at = T.tensor([0, 2, 3], { dtype: "i64" }); // rows 0, 2, 3 of the block from row 4
      for (let step = 0; step < 2; step++) {
        const g = T.zeros([10, 4]);
        const rows = T.randn([3, 4]);
        g.narrow(0, 0, 4).copy_(T.randn([4, 4]));
        g.narrow(0, 4, 6).indexPut_([at], rows);
        ref.grad = g.clone();
        opts[0]!.step();
        opts[1]!.stepRows(dense, (update) => {
          update(0, 4, g.narrow(0, 0, 4));
          update(4, 6, g.narrow(0, 4, 6));
        });
        opts[2]!.stepRows(sparse, (update) => {
          update(0, 4, g.narrow(0, 0, 4));
          update(4, 6, rows, at);
        });
      }
      for (const [name, p, o] of [
        ["dense", dense, opts[1]!],
        ["sparse", sparse, opts[2]!],
      ] as const) {
        assert.ok(p.sub(ref).abs().max().item() < 1e-6, `${name}: weights differ`);
        const m = o.stateDict().tensors.get("0.momentum_buffer");
        const want = opts[0]!.stateDict().tensors.get("0.momentum_buffer");
        assert.equal(m === undefined, want === undefined, `${name}: momentum buffer presence`);
        if (m && want) assert.ok(m.sub(want).abs().max().item() < 1e-6, `${name}: momentum differs`);
        assert.deepEqual(o.stateDict().steps, opts[0]!.stateDict().steps);
      }
      assert.throws(
        () => opts[1]!.stepRows(T.zeros([2]), () => undefined),
        /not one of this optimizer's parameters/,
      );
    }));
}
