// A rank of test/train/dp-step.test.ts: data-parallel backbone + model-parallel head, three SGD
// steps (momentum, weight decay, clipping) over K ranks, against one process training the same
// BN-free network and the full head on the concatenated batch.
import * as T from "../../src/torch/index.ts";
import { Linear, PReLU, Sequential } from "../../src/nn/index.ts";
import { SGD } from "../../src/optim/index.ts";
import { ProcessGroup } from "../../src/distributed/index.ts";
import { tinyHead } from "../helpers/tiny-head.ts";
import { TrainStep } from "../../src/train/index.ts";

const g = ProcessGroup.init(undefined, { timeoutMs: 30000 });
const K = g.worldSize;
const LOCAL = 3;
const CLASSES = 4 * K + 1;
const D = 6;
const opts = { lr: 0.2, momentum: 0.9, weightDecay: 5e-4 };

function makeNet(seed: number): Sequential {
  T.manualSeed(seed);
  return new Sequential(new Linear(8, 16), new PReLU(16), new Linear(16, D));
}
function setup(group: ProcessGroup, seed: number) {
  const net = makeNet(seed);
  const head = tinyHead(group, CLASSES, D);
  const step = new TrainStep(
    group,
    net,
    [{ params: net.parameters() }],
    head,
    new SGD([head.weight], opts),
    (groups) => new SGD(groups, opts),
    { clipNorm: 0.5 },
  );
  step.broadcastFromRoot();
  return { net, head, step };
}

const mine = setup(g, g.rank + 1); // different weights per rank: the broadcast must fix them
const ref = setup(ProcessGroup.single(), 1);
const losses: [number, number][] = [];
for (let step = 0; step < 3; step++) {
  T.scope(() => {
    T.manualSeed(100 + step);
    const x = T.randn([LOCAL * K, 8]);
    const y = T.randint(0, CLASSES, [LOCAL * K], { dtype: "i64" });
    const l = mine.step.run(x.narrow(0, g.rank * LOCAL, LOCAL), y.narrow(0, g.rank * LOCAL, LOCAL)).loss;
    const r = ref.step.run(x, y).loss;
    losses.push([l, r]);
  });
}
const rel = (a: T.Tensor, b: T.Tensor): number =>
  a.sub(b).abs().max().item() / Math.max(1e-30, b.abs().max().item());
let backboneRel = 0;
const refState = ref.net.stateDict();
for (const [k, p] of mine.net.stateDict()) backboneRel = Math.max(backboneRel, rel(p, refState.get(k)!));
const { start, count } = mine.head.shard;
const headRel = rel(mine.head.weight, ref.head.weight.narrow(0, start, count));
const lossRel = Math.max(...losses.map(([a, b]) => Math.abs(a - b) / Math.abs(b)));
console.log(JSON.stringify({ rank: g.rank, backboneRel, headRel, lossRel }));
g.destroy();
