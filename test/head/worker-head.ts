// A rank of test/head/head.test.ts: the model-parallel head's loss and gradients against one
// process computing the full (or sampled-set) margin softmax on the gathered batch.
import * as T from "../../src/torch/index.ts";
import { ProcessGroup } from "../../src/distributed/index.ts";
import { headCases } from "./cases.ts";
import { CombinedMargin } from "../../src/losses/index.ts";
import { PartialFC, classShard, initialShardWeight } from "../../src/head/index.ts";

const g = ProcessGroup.init(undefined, { timeoutMs: 30000 });
const K = g.worldSize;
const cases = headCases(K, 3);

const rel = (a: T.Tensor, b: T.Tensor): number =>
  a.sub(b).abs().max().item() / Math.max(1e-30, b.abs().max().item());

const results = cases.map((c) =>
  T.scope(() => {
    const head = new PartialFC(g, {
      ...c,
      numClasses: c.classes,
      embeddingSize: c.dim,
      featureGradScale: "true",
      seed: 7,
    });
    T.manualSeed(123);
    const X = T.randn([c.perRank * K, c.dim]);
    const Y = T.randint(0, c.classes, [c.perRank * K], { dtype: "i64" });
    T.manualSeed(1000 + g.rank); // ranks sample different negatives
    const mine = X.narrow(0, g.rank * c.perRank, c.perRank)
      .clone()
      .requiresGrad_();
    const loss = head.forward(mine, Y.narrow(0, g.rank * c.perRank, c.perRank));
    loss.backward();
    const gw = head.weight.grad!;

    // Which classes were sampled, over every rank.
    const sampledMask = T.zeros([c.classes]);
    sampledMask.indexPut_([head.lastSampled!], T.scalarTensor(1));
    g.allReduce([sampledMask], "sum").wait();
    const ids = sampledMask.gt(0).nonzero().flatten();
    const slot = T.full([c.classes], -1, { dtype: "i64" });
    slot.indexPut_([ids], T.arange(0, ids.size(0), 1, { dtype: "i64" }));

    const full = initialShardWeight(classShard(c.classes, 0, 1), c.dim, 7);
    const Wsub = full.indexSelect(0, ids).requiresGrad_();
    const Xr = X.clone().requiresGrad_();
    const cos = T.linear(T.normalize(Xr), T.normalize(Wsub)).clamp(-1, 1);
    const yr = slot.indexSelect(0, Y);
    const ref = new CombinedMargin(c.margin).loss(cos, yr);
    ref.backward();

    const { start, count } = head.shard;
    const own = ids.ge(start).logicalAnd(ids.lt(start + count));
    const ownIds = ids.maskedSelect(own);
    const ownSlots = slot.indexSelect(0, ownIds);
    const gwSampled = gw.indexSelect(0, ownIds.sub(start));
    const refGw = Wsub.grad!.indexSelect(0, ownSlots);
    const untouched = T.ones([count]);
    untouched.indexPut_([ownIds.sub(start)], T.scalarTensor(0));
    const unsampledGradMax = gw.abs().sum(1).mul(untouched).max().item();
    const out = {
      name: c.name,
      shardRows: count,
      sampled: ownIds.size(0),
      positivesMissing: yr.lt(0).sum().item(),
      lossRel: Math.abs(loss.item() - ref.item()) / Math.abs(ref.item()),
      featRel: rel(mine.grad!, Xr.grad!.narrow(0, g.rank * c.perRank, c.perRank)),
      weightRel: rel(gwSampled, refGw),
      unsampledGradMax,
      lossValue: loss.item(),
    };
    head.dispose();
    return out;
  }),
);
console.log(JSON.stringify({ rank: g.rank, world: K, results }));
g.destroy();
