// Peak-memory techniques leave the maths unchanged: micro-batching, activation checkpointing,
// ZeRO-1 and ZeRO-2, alone and combined, on 2 ranks (Gloo) equal the plain step; loss scaling
// skips a step with an injected inf everywhere and recovers; with the reference and the fused head.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runRanks } from "../helpers/ranks.ts";
import type { VariantResult } from "./worker-memory.ts";

const here = path.dirname(fileURLToPath(import.meta.url));

interface Line {
  rank: number;
  results: VariantResult[];
  scaling: {
    outcomes: { skipped: boolean; lossScale?: number }[];
    unchanged: number;
    afterSkip: number;
    headAfterSkip: number;
    finalScale: number;
  };
}

// The fused head's update runs inside its pass in the plain step and at step() with micro-batches
// or loss scaling: the same comparisons hold for it.
for (const head of ["reference", "fused"])
  test(`micro-batching, checkpointing, ZeRO-1/2 and loss scaling on 2 ranks (${head} head)`, async () => {
    const lines = await runRanks<Line>(2, path.join(here, "worker-memory.ts"), { TEST_HEAD: head });
    assert.equal(lines.length, 2);
    for (const l of lines) {
      assert.equal(l.results.length, 7);
      for (const r of l.results) {
        // global: ‖Δ‖/‖plain‖ over the whole backbone state; close: per tensor, ≤ 1 when every
        // element is within 1e-5 + 1e-5·|plain| (see worker-memory.ts)
        assert.ok(r.global <= 1e-5, `rank ${l.rank}, ${r.name}: backbone rel ${r.global}`);
        assert.ok(
          r.close <= 1,
          `rank ${l.rank}, ${r.name}: a backbone tensor is off by ${r.close}× the tolerance`,
        );
        assert.ok(r.head <= 1e-5, `rank ${l.rank}, ${r.name}: head rel ${r.head}`);
        assert.ok(r.loss <= 1e-5, `rank ${l.rank}, ${r.name}: loss rel ${r.loss}`);
        // DataParallel arms/all-reduces once per step; ZeRO-2 reduce-scatters instead (0 here)
        assert.equal(r.syncsPerStep, r.name.includes("ZeRO-2") ? 0 : 1, `${r.name}: gradient syncs per step`);
      }
      // ZeRO-2 + checkpointing: all but the stem's bucket(s) are reduced while backward still runs.
      const [streamed, buckets] = l.results.find((r) => r.name.startsWith("all"))!.streamed!;
      assert.ok(streamed! > 0 && streamed! < buckets!, `streamed ${streamed} of ${buckets} buckets`);
      const s = l.scaling;
      // Step 1 (inf on rank 1 only) is skipped on both ranks; the scale halves, then doubles after
      // every 2 good steps: 1024, 1024 (skip) -> 512, 512, 512 -> 1024, 1024.
      assert.deepEqual(
        s.outcomes.map((o) => o.skipped),
        [false, true, false, false, false],
      );
      assert.deepEqual(
        s.outcomes.map((o) => o.lossScale),
        [1024, 1024, 512, 512, 1024],
      );
      assert.equal(s.finalScale, 1024);
      assert.equal(s.unchanged, 0, "a skipped step changed a parameter");
      assert.ok(s.afterSkip <= 1e-5, `rank ${l.rank}: backbone vs the run without step 1: ${s.afterSkip}`);
      assert.ok(
        s.headAfterSkip <= 1e-5,
        `rank ${l.rank}: head vs the run without step 1: ${s.headAfterSkip}`,
      );
    }
  });
