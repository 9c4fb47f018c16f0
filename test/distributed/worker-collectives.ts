// A rank of test/distributed/group.test.ts: runs collectives and prints one JSON line of results.
import * as T from "../../src/torch/index.ts";
import { ProcessGroup, placementFromEnv } from "../../src/distributed/index.ts";

const p = placementFromEnv();
const g = ProcessGroup.init(p, { timeoutMs: Number(process.env.TEST_TIMEOUT_MS ?? 20000) });
const r = g.rank;
const out: Record<string, unknown> = { rank: r, world: g.worldSize, source: p.source };

const a = T.tensor([r + 1, 10 * (r + 1)]);
g.allReduce([a]).wait();
out.sum = a.toArray();
const m = T.tensor([r, -r]);
g.allReduce([m], "max").wait();
out.max = m.toArray();
out.gather = g
  .allGather(T.tensor([r, r, r]).mul(1))
  .wait()
  .map((t) => t.toArray());
const b = r === 1 ? T.tensor([7, 8, 9]) : T.zeros([3]);
g.broadcast([b], 1).wait();
out.broadcast = b.toArray();
const rsOut = T.zeros([2]);
const inputs = Array.from({ length: g.worldSize }, (_, i) => T.tensor([100 * i + r, 1]));
g.reduceScatter(rsOut, inputs).wait();
out.reduceScatter = rsOut.toArray();
const c = T.tensor([r]);
await g.allReduce([c]).waitAsync();
out.async = c.item();
g.barrier().wait();
if (process.env.TEST_DIE_RANK === String(r)) process.kill(process.pid, "SIGKILL");
if (process.env.TEST_DIE_RANK !== undefined) {
  // survivors: block in a collective that the dead rank never joins
  const t0 = Date.now();
  try {
    g.allReduce([T.ones([1])]).wait();
    out.error = "no error";
  } catch (e) {
    out.error = (e as Error).message;
  }
  out.failedAfterMs = Date.now() - t0;
}
console.log(JSON.stringify(out));
g.destroy();
