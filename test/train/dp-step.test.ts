// One data-parallel step over K ranks (backbone averaged by DataParallel, head model-parallel)
// equals one process on the concatenated batch: the world-size scaling of the head's feature
// gradient leaves the backbone with the true gradient of the mean global-batch loss.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runRanks } from "../helpers/ranks.ts";

const here = path.dirname(fileURLToPath(import.meta.url));

for (const K of [2, 3]) {
  test(`3 training steps on ${K} ranks equal one process on the concatenated batch`, async () => {
    const lines = await runRanks<{ rank: number; backboneRel: number; headRel: number; lossRel: number }>(
      K,
      path.join(here, "worker-dp-step.ts"),
    );
    assert.equal(lines.length, K);
    for (const l of lines) {
      assert.ok(l.lossRel <= 1e-5, `rank ${l.rank}: loss rel ${l.lossRel}`);
      assert.ok(l.backboneRel <= 1e-5, `rank ${l.rank}: backbone rel ${l.backboneRel}`);
      assert.ok(l.headRel <= 1e-5, `rank ${l.rank}: head rel ${l.headRel}`);
    }
  });
}
