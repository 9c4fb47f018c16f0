// A rank of test/optim/lars-zero.test.ts. (1) LARS on ZeRO-1 and ZeRO-2 pieces against LARS on the
// whole tensors (plain data parallel), same ranks and data, five steps: tiny buckets so that pieces
// cut across layers (weights, biases, BatchNorm, PReLU) and a layer spreads over several ranks.
// (2) Without BatchNorm, ZeRO-2 and the model-parallel head both under LARS against one process
// training the same network and the whole head on the concatenated batch.
import * as T from "../../src/torch/index.ts";
import { BatchNorm1d, Linear, PReLU, Sequential } from "../../src/nn/index.ts";
import { LARS, SGD } from "../../src/optim/index.ts";
import { ProcessGroup } from "../../src/distributed/index.ts";
import { tinyHead } from "../helpers/tiny-head.ts";
import { TrainStep } from "../../src/train/index.ts";
import { headOptimizer } from "../../src/train/optim-config.ts";
import { type ParamGroups } from "../../src/train/sync.ts";

const g = ProcessGroup.init(undefined, { timeoutMs: 60000 });
const K = g.worldSize;
const LOCAL = 4;
const D = 6;
const CLASSES = 3 * K + 1;
const STEPS = 5;
const lars = (groups: ParamGroups): LARS =>
  new LARS(groups, { lr: 0.5, momentum: 0.9, weightDecay: 5e-3, trustCoefficient: 0.02 });

function setup(group: ProcessGroup, o: { zero: 0 | 1 | 2; bn: boolean; larsHead: boolean }) {
  T.manualSeed(group.rank + 1); // different weights per rank: the broadcast must fix them
  const net = o.bn
    ? new Sequential(
        new Linear(8, 24),
        new BatchNorm1d(24),
        new PReLU(24),
        new Linear(24, 16),
        new BatchNorm1d(16),
        new Linear(16, D),
      )
    : new Sequential(new Linear(8, 24), new PReLU(24), new Linear(24, D));
  net.train();
  const head = tinyHead(group, CLASSES, D);
  const headOpt = o.larsHead ? headOptimizer(lars, group, head.weight) : new SGD([head.weight], { lr: 0.1 });
  // About 64 elements a bucket.
  const step = new TrainStep(
    group,
    net,
    [{ params: net.parameters() }],
    head,
    headOpt as never,
    lars as never,
    {
      zero: o.zero,
      bucketCapMB: (64 * 4) / 2 ** 20,
    },
  );
  step.broadcastFromRoot(net.namedBuffers().map(([, b]) => b));
  return { net, head, step };
}

function batch(s: number): { x: T.Tensor; y: T.Tensor } {
  T.manualSeed(100 + s);
  return { x: T.randn([LOCAL * K, 8]), y: T.randint(0, CLASSES, [LOCAL * K], { dtype: "i64" }) };
}
const mine = (t: T.Tensor): T.Tensor => t.narrow(0, g.rank * LOCAL, LOCAL);

/** assert_close's rule, rtol = atol = 1e-5: the largest |a − b| / (atol + rtol·|b|); ≤ 1 is close. */
const close = (a: T.Tensor, b: T.Tensor): number =>
  T.scope(() => a.sub(b).abs().div(b.abs().mul(1e-5).add(1e-5)).max().item());
function worst(a: Map<string, T.Tensor>, b: Map<string, T.Tensor>): number {
  return Math.max(...[...a].map(([k, t]) => close(t, b.get(k)!)));
}

// (1) ZeRO-1/2 against plain data parallel, both LARS; and how far LARS moved from plain SGD.
const plain = setup(g, { zero: 0, bn: true, larsHead: false });
const zeros = ([1, 2] as const).map((zero) => setup(g, { zero, bn: true, larsHead: false }));
const start = new Map([...plain.net.stateDict()].map(([k, t]) => [k, t.clone().keep()]));
for (let s = 0; s < STEPS; s++)
  T.scope(() => {
    const { x, y } = batch(s);
    for (const r of [plain, ...zeros]) r.step.run(mine(x), mine(y));
  });
const zero1 = worst(zeros[0]!.net.stateDict(), plain.net.stateDict());
const zero2 = worst(zeros[1]!.net.stateDict(), plain.net.stateDict());
const moved = worst(plain.net.stateDict(), start);

// (2) K ranks (ZeRO-2, LARS head) against one process on the concatenated batch.
const ranks = setup(g, { zero: 2, bn: false, larsHead: true });
const one = setup(ProcessGroup.single(), { zero: 0, bn: false, larsHead: true });
for (let s = 0; s < STEPS; s++)
  T.scope(() => {
    const { x, y } = batch(s);
    ranks.step.run(mine(x), mine(y));
    one.step.run(x, y);
  });
const single = worst(ranks.net.stateDict(), one.net.stateDict());
const { start: c0, count } = ranks.head.shard;
const head = T.scope(() => close(ranks.head.weight, one.head.weight.narrow(0, c0, count)));

console.log(JSON.stringify({ rank: g.rank, zero1, zero2, moved, single, head }));
g.destroy();
