// The model-parallel head on 2 and 3 real Gloo ranks equals one process computing the same
// margin softmax over the gathered batch: loss, feature gradients, weight gradients (≤ 1e-5
// relative), with uneven class shards; Partial FC gives gradient to sampled rows only.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runRanks } from "../helpers/ranks.ts";
import { classShard } from "../../src/head/index.ts";

const here = path.dirname(fileURLToPath(import.meta.url));

interface CaseResult {
  name: string;
  shardRows: number;
  sampled: number;
  positivesMissing: number;
  lossRel: number;
  featRel: number;
  weightRel: number;
  unsampledGradMax: number;
  lossValue: number;
}

test("class shards follow arcface_torch's uneven split", () => {
  const shards = [0, 1, 2].map((r) => classShard(11, r, 3));
  assert.deepEqual(
    shards.map((s) => [s.start, s.count]),
    [
      [0, 4],
      [4, 4],
      [8, 3],
    ],
  );
  assert.throws(() => classShard(2, 0, 3), /numClasses/);
});

for (const K of [2, 3]) {
  test(`head on ${K} ranks equals a single-process margin softmax`, async () => {
    const lines = await runRanks<{ rank: number; results: CaseResult[] }>(
      K,
      path.join(here, "worker-head.ts"),
    );
    assert.equal(lines.length, K);
    for (const line of lines) {
      for (const r of line.results) {
        const where = `rank ${line.rank} ${r.name}`;
        assert.equal(r.positivesMissing, 0, `${where}: a positive class was not sampled`);
        assert.ok(r.lossRel <= 1e-5, `${where}: loss rel ${r.lossRel}`);
        assert.ok(r.featRel <= 1e-5, `${where}: feature grad rel ${r.featRel}`);
        assert.ok(r.weightRel <= 1e-5, `${where}: weight grad rel ${r.weightRel}`);
        assert.equal(r.unsampledGradMax, 0, `${where}: unsampled rows got gradient`);
        if (r.name.includes("sampled")) assert.ok(r.sampled < r.shardRows, `${where}: nothing was left out`);
        else assert.equal(r.sampled, r.shardRows);
      }
    }
    // The loss is the same global value on every rank.
    for (let i = 0; i < lines[0]!.results.length; i++) {
      const values = lines.map((l) => l.results[i]!.lossValue);
      assert.ok(
        values.every((v) => v === values[0]),
        `loss differs across ranks: ${values.join(", ")}`,
      );
    }
  });
}
