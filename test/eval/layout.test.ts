import { test } from "node:test";
import assert from "node:assert/strict";
import { makeLayout } from "../../src/eval/layout.ts";

test("blocks cover every pair i < j exactly once (a staircase of strips on the diagonal)", () => {
  for (const [n, blockSize, grouped] of [
    [1, 4, false],
    [2, 1, false],
    [7, 3, true],
    [50, 8, true],
    [61, 64, false],
    [90, 13, true],
  ] as const) {
    const labels = Array.from({ length: n }, (_, i) => (i * 7) % 5);
    const groups = grouped ? Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 1 : 0)) : undefined;
    const layout = makeLayout(labels, groups, blockSize);
    const seen = new Uint8Array(n * n);
    for (const b of layout.blocks) {
      assert.ok(b.rows.end - b.rows.start <= blockSize && b.cols.end - b.cols.start <= blockSize);
      for (let i = b.rows.start; i < b.rows.end; i++)
        for (let j = b.diagonal ? i + 1 : b.cols.start; j < b.cols.end; j++) {
          assert.ok(i < j, `block ${b.index} pairs ${i} with ${j}`);
          seen[i * n + j]! += 1;
        }
    }
    for (let i = 0; i < n; i++)
      for (let j = i + 1; j < n; j++) assert.equal(seen[i * n + j], 1, `n=${n} pair ${i},${j}`);
    // Tiles: near-equal sizes within a group, none above blockSize.
    for (const t of layout.tiles) assert.ok(t.end > t.start && t.end - t.start <= blockSize);
  }
});
