// A rank of test/eval/dist.test.ts: evaluates the shared test set over a real process group and
// prints one JSON line per configuration.
import { ProcessGroup, placementFromEnv } from "../../src/distributed/index.ts";
import { evaluatePairs, processGroupCollectives } from "../../src/eval/index.ts";
import { DIST_CASES, distInput } from "./dist-case.ts";

const group = ProcessGroup.init(placementFromEnv(), { timeoutMs: 60_000 });
const collectives = processGroupCollectives(group);
const input = distInput();
for (const [name, opts] of Object.entries(DIST_CASES)) {
  const r = await evaluatePairs(input, { ...opts, collectives });
  console.log(JSON.stringify({ rank: group.rank, name, subsets: r.subsets, curves: r.curves }));
}
group.barrier().wait();
group.destroy();
