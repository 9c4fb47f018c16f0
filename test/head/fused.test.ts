// The fused chunked head equals the reference PartialFC on 2 and 3 real Gloo ranks, CosFace and
// ArcFace, with and without Partial FC sampling: loss, feature gradients, and the weights and
// momentum after two SGD steps, whether the update runs inside the gradient pass, at step(), or
// after two micro-batches; a skipped step leaves the shard alone; bf16 logits stay close.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runRanks } from "../helpers/ranks.ts";

const here = path.dirname(fileURLToPath(import.meta.url));

interface Result {
  name: string;
  lossRel: number;
  featRel: number;
  weightRel: number;
  momentumRel: number;
  finite: boolean;
  unchanged: boolean;
}

for (const K of [2, 3]) {
  test(`fused head on ${K} ranks equals the reference head`, async () => {
    const lines = await runRanks<{ rank: number; results: Result[] }>(K, path.join(here, "worker-fused.ts"));
    assert.equal(lines.length, K);
    for (const line of lines) {
      assert.equal(line.results.length, 20);
      for (const r of line.results) {
        const where = `rank ${line.rank} ${r.name}`;
        // bf16 logits: 8 bits of mantissa in the matmuls, × s = 64 before the softmax. That they
        // differ at all shows the block matmuls ran in bf16.
        const bf16 = r.name.endsWith("bf16");
        const tol = bf16 ? 0.15 : 1e-5;
        if (bf16) assert.ok(r.featRel > 0, `${where}: bf16 logits gave fp32's gradients exactly`);
        assert.ok(r.finite, `${where}: a finite step reported a non-finite gradient`);
        assert.ok(r.lossRel <= tol, `${where}: loss rel ${r.lossRel}`);
        assert.ok(r.featRel <= tol, `${where}: feature grad rel ${r.featRel}`);
        if (r.name.endsWith("skip")) {
          assert.ok(r.unchanged, `${where}: a skipped step changed the weights or momentum`);
          continue;
        }
        assert.ok(r.weightRel <= (bf16 ? 0.15 : 1e-4), `${where}: update rel ${r.weightRel}`);
        assert.ok(r.momentumRel <= (bf16 ? 0.15 : 1e-4), `${where}: momentum rel ${r.momentumRel}`);
      }
    }
  });
}
