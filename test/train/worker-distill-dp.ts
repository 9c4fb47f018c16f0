// A rank of test/train/distill-step.test.ts's data-parallel case: each rank distils on its own
// slice of the batch (its teacher embeddings beside it), a projection included, against one
// process on the concatenated batch: the same losses, backbone, projection and head.
import * as T from "../../src/torch/index.ts";
import { Linear, PReLU, Sequential } from "../../src/nn/index.ts";
import { SGD } from "../../src/optim/index.ts";
import { ProcessGroup } from "../../src/distributed/index.ts";
import { tinyHead } from "../helpers/tiny-head.ts";
import { DistillTerm, TrainStep } from "../../src/train/index.ts";

const g = ProcessGroup.init(undefined, { timeoutMs: 30000 });
const K = g.worldSize;
const LOCAL = 4;
const D = 6;
const TD = 5;
const opts = { lr: 0.2, momentum: 0.9, weightDecay: 5e-4 };

function setup(group: ProcessGroup) {
  T.manualSeed(1);
  const net = new Sequential(new Linear(8, 16), new PReLU(16), new Linear(16, D));
  const term = new DistillTerm(9, D, TD);
  const head = tinyHead(group, 3 * K + 1, D);
  const step = new TrainStep(
    group,
    net,
    [{ params: [...net.parameters(), ...term.parameters()] }],
    head,
    new SGD([head.weight], opts),
    (gs) => new SGD(gs, opts),
    { distill: term, microBatches: 2 },
  );
  step.broadcastFromRoot();
  return { net, term, head, step };
}

const mine = setup(g);
const ref = setup(ProcessGroup.single());
const rel = (a: T.Tensor, b: T.Tensor): number =>
  a.sub(b).abs().max().item() / Math.max(1e-30, b.abs().max().item());
let lossRel = 0;
for (let s = 0; s < 3; s++)
  T.scope(() => {
    T.manualSeed(100 + s);
    const x = T.randn([LOCAL * K, 8]);
    const y = T.randint(0, 3 * K + 1, [LOCAL * K], { dtype: "i64" });
    const t = T.randn([LOCAL * K, TD]);
    const part = (v: T.Tensor): T.Tensor => v.narrow(0, g.rank * LOCAL, LOCAL);
    const a = mine.step.run(part(x), part(y), part(t));
    const b = ref.step.run(x, y, t);
    for (const k of ["ce", "distill"])
      lossRel = Math.max(lossRel, Math.abs(a.parts[k]! - b.parts[k]!) / Math.abs(b.parts[k]!));
    lossRel = Math.max(lossRel, Math.abs(a.loss - b.loss) / Math.abs(b.loss));
  });
let backboneRel = rel(mine.term.projection!.weight, ref.term.projection!.weight);
const refState = ref.net.stateDict();
for (const [k, p] of mine.net.stateDict()) backboneRel = Math.max(backboneRel, rel(p, refState.get(k)!));
const { start, count } = mine.head.shard;
const headRel = rel(mine.head.weight, ref.head.weight.narrow(0, start, count));
console.log(JSON.stringify({ rank: g.rank, backboneRel, headRel, lossRel }));
g.destroy();
