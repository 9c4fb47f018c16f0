// LARS takes whole-layer norms however the parameters are sharded: on ZeRO-1 and ZeRO-2 pieces it
// equals LARS on whole tensors, and on 2 or 3 ranks (with the model-parallel head under LARS too)
// it equals one process on the concatenated batch.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runRanks } from "../helpers/ranks.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
interface Line {
  rank: number;
  zero1: number;
  zero2: number;
  moved: number;
  single: number;
  head: number;
}

for (const k of [2, 3]) {
  test(`LARS with ZeRO-1 and ZeRO-2 equals LARS on whole layers, ${k} ranks`, async () => {
    const lines = await runRanks<Line>(k, path.join(here, "worker-lars-zero.ts"));
    assert.equal(lines.length, k);
    for (const l of lines) {
      // Each figure: the worst element's |Δ| / (1e-5 + 1e-5·|reference|); ≤ 1 is within tolerance.
      assert.ok(l.zero1 <= 1, `rank ${l.rank}: ZeRO-1 off by ${l.zero1}× the tolerance`);
      assert.ok(l.zero2 <= 1, `rank ${l.rank}: ZeRO-2 off by ${l.zero2}× the tolerance`);
      assert.ok(l.moved > 100, `rank ${l.rank}: the steps barely moved the weights (${l.moved})`);
      assert.ok(l.single <= 1, `rank ${l.rank}: backbone vs one process off by ${l.single}×`);
      assert.ok(l.head <= 1, `rank ${l.rank}: head shard vs one process off by ${l.head}×`);
    }
  });
}
