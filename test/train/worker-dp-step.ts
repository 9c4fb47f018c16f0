// A rank of test/train/dp-step.test.ts: data-parallel backbone + model-parallel head, three SGD
// steps (momentum, weight decay, clipping) over K ranks, against one process training the same
// BN-free network and the full head on the concatenated batch.
import * as T from "../../src/torch/index.ts";
import { Linear, PReLU, Sequential } from "../../src/nn/index.ts";
import { SGD } from "../../src/optim/index.ts";
import { DataParallel, ProcessGroup } from "../../src/dist/index.ts";
import { PartialFC } from "../../src/head/index.ts";
import { trainStep } from "../../src/train/index.ts";

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
  const dp = new DataParallel(group, net.parameters());
  dp.broadcastFromRoot();
  const head = new PartialFC(group, {
    numClasses: CLASSES,
    embeddingSize: D,
    sampleRate: 1,
    margin: { s: 16, m3: 0.3 },
    seed: 3,
  });
  return {
    net,
    parts: {
      forward: (x: T.Tensor) => net.forward(x),
      backboneParams: net.parameters(),
      dp,
      head,
      backboneOpt: new SGD(net.parameters(), opts),
      headOpt: new SGD([head.weight], opts),
      clipNorm: 0.5,
    },
  };
}

const mine = setup(g, g.rank + 1); // different weights per rank: the broadcast must fix them
const ref = setup(ProcessGroup.single(), 1);
const losses: [number, number][] = [];
for (let step = 0; step < 3; step++) {
  T.scope(() => {
    T.manualSeed(100 + step);
    const x = T.randn([LOCAL * K, 8]);
    const y = T.randint(0, CLASSES, [LOCAL * K], { dtype: "i64" });
    const l = trainStep(mine.parts, x.narrow(0, g.rank * LOCAL, LOCAL), y.narrow(0, g.rank * LOCAL, LOCAL));
    const r = trainStep(ref.parts, x, y);
    losses.push([l, r]);
  });
}
const rel = (a: T.Tensor, b: T.Tensor): number =>
  a.sub(b).abs().max().item() / Math.max(1e-30, b.abs().max().item());
let backboneRel = 0;
const refState = ref.net.stateDict();
for (const [k, p] of mine.net.stateDict()) backboneRel = Math.max(backboneRel, rel(p, refState.get(k)!));
const { start, count } = mine.parts.head.shard;
const headRel = rel(mine.parts.head.weight, ref.parts.head.weight.narrow(0, start, count));
const lossRel = Math.max(...losses.map(([a, b]) => Math.abs(a - b) / Math.abs(b)));
console.log(JSON.stringify({ rank: g.rank, backboneRel, headRel, lossRel }));
g.destroy();
