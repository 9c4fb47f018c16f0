// A rank of test/distributed/data-parallel.test.ts: a BN-free network trained data-parallel for a few
// steps must match one process training on the concatenated batch.
import * as T from "../../src/torch/index.ts";
import { Linear, PReLU, Sequential } from "../../src/nn/index.ts";
import { SGD } from "../../src/optim/index.ts";
import { DataParallel, ProcessGroup } from "../../src/distributed/index.ts";

const g = ProcessGroup.init(undefined, { timeoutMs: 20000 });
const mode = (process.env.TEST_DP_MODE ?? "overlap") as "overlap" | "post" | "fp16" | "fp16-post" | "bf16";
const LOCAL = 4;
const STEPS = 3;

function makeNet(seed: number): Sequential {
  T.manualSeed(seed);
  return new Sequential(new Linear(8, 16), new PReLU(16), new Linear(16, 4));
}
function globalBatch(step: number): { x: T.Tensor; y: T.Tensor } {
  T.manualSeed(1000 + step);
  return { x: T.randn([LOCAL * g.worldSize, 8]), y: T.randn([LOCAL * g.worldSize, 4]) };
}

// Every rank starts from different weights: the broadcast must make them rank 0's.
const net = makeNet(g.rank + 1);
let dp: DataParallel;
try {
  dp = new DataParallel(g, net.parameters(), {
    overlap: mode !== "post" && mode !== "fp16-post",
    compress: mode.startsWith("fp16") ? "fp16" : mode === "bf16" ? "bf16" : "none",
  });
} catch (e) {
  console.log(JSON.stringify({ rank: g.rank, mode, refused: (e as Error).message }));
  g.destroy();
  process.exit(0);
}
dp.broadcastFromRoot();
const ref = makeNet(1);
const opt = new SGD(net.parameters(), { lr: 0.1, momentum: 0.9 });
const refOpt = new SGD(ref.parameters(), { lr: 0.1, momentum: 0.9 });

for (let step = 0; step < STEPS; step++) {
  T.scope(() => {
    const { x, y } = globalBatch(step);
    const mine = x.narrow(0, g.rank * LOCAL, LOCAL);
    const target = y.narrow(0, g.rank * LOCAL, LOCAL);
    opt.zeroGrad();
    dp.beforeBackward();
    T.mseLoss(net.forward(mine), target).backward();
    dp.afterBackward();
    opt.step();
    refOpt.zeroGrad();
    T.mseLoss(ref.forward(x), y).backward();
    refOpt.step();
  });
}

let maxRel = 0;
for (const [k, p] of net.stateDict()) {
  const q = ref.stateDict().get(k)!;
  maxRel = Math.max(maxRel, p.sub(q).abs().max().item() / Math.max(1e-12, q.abs().max().item()));
}
console.log(JSON.stringify({ rank: g.rank, mode, overlapped: dp.overlapped, maxRel }));
dp.destroy();
g.destroy();
