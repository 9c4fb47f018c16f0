// A rank of test/train/memory.test.ts: for each combination of micro-batching, activation
// checkpointing and ZeRO, three SGD steps (momentum, weight decay, clipping) of a small iResNet with
// a model-parallel head, against the plain step on the same ranks and data. BatchNorm normalises
// each micro-batch in both runs (the plain run's forward is chunked the same way), so every
// parameter and buffer must agree. Then loss scaling: an inf injected into one rank's gradient
// skips the step on every rank, halves the scale and leaves every parameter as a run that never
// saw that step's batch; training then goes on and the scale grows back.
import * as T from "../../src/torch/index.ts";
import { ProcessGroup } from "../../src/distributed/index.ts";
import { tinyHead } from "../helpers/tiny-head.ts";
import { SGD } from "../../src/optim/index.ts";
import { IResNet, type CheckpointPolicy } from "../../src/models/index.ts";
import { type StepModel, type StepOptions, TrainStep } from "../../src/train/index.ts";

const g = ProcessGroup.init(undefined, { timeoutMs: 60000 });
const K = g.worldSize;
const LOCAL = 8;
const CLASSES = 9;
const D = 8;
const opts = { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 };

interface Variant {
  name: string;
  microBatches?: number;
  checkpoint?: CheckpointPolicy;
  zero?: 0 | 1 | 2;
}
const VARIANTS: Variant[] = [
  { name: "micro-batches 4", microBatches: 4 },
  { name: "checkpoint per stage", checkpoint: "stage" },
  { name: "checkpoint every block, micro-batches 2", checkpoint: { every: 1 }, microBatches: 2 },
  { name: "ZeRO-1", zero: 1 },
  { name: "ZeRO-2", zero: 2 },
  { name: "ZeRO-1, micro-batches 2, checkpoint per stage", zero: 1, microBatches: 2, checkpoint: "stage" },
  {
    name: "all: micro-batches 4, checkpoint every 2, ZeRO-2",
    zero: 2,
    microBatches: 4,
    checkpoint: { every: 2 },
  },
];

function build(checkpoint: CheckpointPolicy, o: StepOptions, chunks: number) {
  T.manualSeed(g.rank + 11); // different weights per rank: the broadcast must fix them
  const net = new IResNet({ blocks: [1, 1, 1, 1], width: 0.125, numFeatures: D, checkpoint });
  net.train();
  const head = tinyHead(g, CLASSES, D, process.env.TEST_HEAD === "fused");
  // The plain run normalises BatchNorm over the same chunks as the micro-batched one.
  const model: StepModel =
    chunks === 1
      ? net
      : {
          forward: (x) => T.cat(x.split(x.size(0) / chunks, 0).map((c) => net.forward(c))),
          tape: net.tape,
          checkpoint,
        };
  const params = net.parameters().filter((p) => p.requiresGrad);
  const step = new TrainStep(
    g,
    model,
    [{ params }],
    head,
    new SGD([head.weight], opts),
    (groups) => new SGD(groups, opts),
    { clipNorm: 0.5, bucketCapMB: 0.01, ...o },
  );
  step.broadcastFromRoot(net.namedBuffers().map(([, b]) => b));
  return { net, head, step };
}

function batch(step: number): { x: T.Tensor; y: T.Tensor } {
  T.manualSeed(1000 + step);
  const x = T.randn([LOCAL * K, 3, 112, 112]);
  const y = T.randint(0, CLASSES, [LOCAL * K], { dtype: "i64" });
  return {
    x: x.narrow(0, g.rank * LOCAL, LOCAL).contiguous(),
    y: y.narrow(0, g.rank * LOCAL, LOCAL).contiguous(),
  };
}

// Two measures of "the same parameters". Global: ‖a − b‖ / ‖b‖ over every float tensor of the
// state laid end to end (integer buffers such as num_batches_tracked must match exactly). Per
// tensor: torch.testing.assert_close's rule with rtol 1e-5 and its fp32 atol 1e-5, the largest
// |a − b| / (atol + rtol·|b|), at most 1 when every element is close. (A per-tensor max-relative
// error is meaningless here: the biases of a BatchNorm that feeds another BatchNorm have a zero
// true gradient and hold only rounding noise of ~1e-10.)
const ATOL = 1e-5;
const RTOL = 1e-5;
const close = (a: T.Tensor, b: T.Tensor): number =>
  T.scope(() => {
    const bf = b.float();
    return a.float().sub(bf).abs().div(bf.abs().mul(RTOL).add(ATOL)).max().item();
  });

function compare(a: Map<string, T.Tensor>, b: Map<string, T.Tensor>): { global: number; close: number } {
  return T.scope(() => {
    let diff = 0;
    let norm = 0;
    let worst = 0;
    for (const [k, t] of a) {
      const r = b.get(k)!;
      if (t.dtype !== "f32") {
        if (t.sub(r).abs().max().item() !== 0) return { global: Infinity, close: Infinity };
        continue;
      }
      diff += t.sub(r).pow(2).sum().item();
      norm += r.pow(2).sum().item();
      worst = Math.max(worst, close(t, r));
    }
    return { global: Math.sqrt(diff / norm), close: worst };
  });
}

/** One variant against the plain step (this rank's view). */
export interface VariantResult {
  name: string;
  /** ‖Δ‖/‖plain‖ over the backbone state, and the worst per-tensor closeness (≤ 1: within tolerance). */
  global: number;
  close: number;
  head: number;
  loss: number;
  /** ZeRO: [buckets reduced during backward, buckets]. */
  streamed?: number[];
  syncsPerStep: number;
}
const results: VariantResult[] = [];
for (const v of VARIANTS) {
  const M = v.microBatches ?? 1;
  const mine = build(v.checkpoint, { microBatches: M, zero: v.zero ?? 0 }, 1);
  // Backbone gradient communication once per step, whatever M: count the arming of the Reducer
  // (or the post-backward all-reduce) and ZeRO-2's reductions.
  let syncs = 0;
  const dp = mine.step.dp;
  const arm = dp.beforeBackward.bind(dp);
  dp.beforeBackward = () => {
    if (dp.overlapped) syncs++;
    arm();
  };
  const reduce = dp.allReduceGradients.bind(dp);
  dp.allReduceGradients = () => {
    if (!dp.overlapped) syncs++;
    reduce();
  };
  const ref = build(undefined, {}, M);
  let loss = 0;
  for (let s = 0; s < 3; s++) {
    T.scope(() => {
      const { x, y } = batch(s);
      const a = mine.step.run(x, y).loss;
      const b = ref.step.run(x, y).loss;
      loss = Math.max(loss, Math.abs(a - b) / Math.abs(b));
    });
  }
  const head = compare(new Map([["w", mine.head.weight]]), new Map([["w", ref.head.weight]]));
  // ZeRO-2 with checkpointing reduce-scatters finished buckets during the backward pass.
  const z = mine.step.zero;
  results.push({
    name: v.name,
    ...compare(mine.net.stateDict(), ref.net.stateDict()),
    head: head.global,
    loss,
    streamed: z ? [z.streamedBuckets, z.numBuckets] : undefined,
    syncsPerStep: syncs / 3,
  });
  for (const r of [mine, ref]) {
    r.step.dispose();
    r.head.dispose();
    r.net.dispose();
  }
}

// Loss scaling: inf on rank 1's gradient at step 1; growth after 2 good steps.
let inject = false;
const scaled = build(
  undefined,
  {
    lossScale: { init: 1024, growthFactor: 2, backoffFactor: 0.5, growthInterval: 2 },
    // Plain data parallel: rank 1's gradient is already averaged when the inf lands in it, so
    // only rank 1 sees it; the skip must still happen on both.
    zero: 0,
    afterBackward: () => {
      if (!inject || g.rank !== 1) return;
      const p = scaled.net.parameters()[0]!;
      T.scope(() => p.grad!.view(-1).narrow(0, 0, 1).fill_(Infinity));
    },
  },
  1,
);
const plain = build(undefined, { zero: 0 }, 1);
const outcomes: { skipped: boolean; lossScale?: number }[] = [];
const before = new Map<string, T.Tensor>();
let unchanged = 0;
for (let s = 0; s < 5; s++) {
  T.scope(() => {
    const { x, y } = batch(s);
    inject = s === 1;
    if (s === 1) for (const [k, t] of scaled.net.namedParameters()) before.set(k, t.clone().keep());
    const o = scaled.step.run(x, y);
    outcomes.push({ skipped: o.skipped, lossScale: o.lossScale });
    if (s === 1) unchanged = compare(new Map(scaled.net.namedParameters()), before).global;
    if (s !== 1) plain.step.run(x, y);
  });
}
const afterSkip = compare(new Map(scaled.net.namedParameters()), new Map(plain.net.namedParameters())).global;
const headAfterSkip = compare(
  new Map([["w", scaled.head.weight]]),
  new Map([["w", plain.head.weight]]),
).global;

console.log(
  JSON.stringify({
    rank: g.rank,
    results,
    scaling: { outcomes, unchanged, afterSkip, headAfterSkip, finalScale: scaled.step.scaler!.scale },
  }),
);
g.destroy();
