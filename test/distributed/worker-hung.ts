// A rank of test/distributed/hung-rank.test.ts: rank 1 stops itself (SIGSTOP) before a
// data-parallel backward, so rank 0's gradient all-reduce, launched inside backward by c10d's
// Reducer where it is available, never completes. Rank 0 prints the error it ends with.
import * as T from "../../src/torch/index.ts";
import { Linear } from "../../src/nn/index.ts";
import { DataParallel, ProcessGroup } from "../../src/distributed/index.ts";

const g = ProcessGroup.init(undefined, { timeoutMs: Number(process.env.TEST_TIMEOUT_MS) });
const net = new Linear(8, 4);
const dp = new DataParallel(g, net.parameters());
dp.broadcastFromRoot();
const own = new Error("data: record 7 is not a JPEG");
const passthrough = g.explainFailure(own) === own;
if (g.rank === 1) process.kill(process.pid, "SIGSTOP");
const t0 = Date.now();
try {
  T.scope(() => {
    dp.beforeBackward();
    T.mseLoss(net.forward(T.randn([4, 8])), T.zeros([4, 4])).backward();
    dp.afterBackward();
  });
  console.log(JSON.stringify({ rank: g.rank, error: "no error" }));
} catch (e) {
  const error = (g.explainFailure(e) as Error).message;
  console.log(JSON.stringify({ rank: g.rank, passthrough, error, ms: Date.now() - t0 }));
}
process.exit(0);
