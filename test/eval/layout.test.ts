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

test("tiles and diagonal strips are cut at multiples of 16 rows, the remainder in a group's first", () => {
  const n = 50_001;
  const groups = Array.from({ length: n }, (_, i) => i % 2);
  const layout = makeLayout(
    Array.from({ length: n }, (_, i) => Math.floor(i / 10)),
    groups,
    2048,
  );
  const sizes = layout.tiles.map((t) => t.end - t.start);
  // 25 001 unmasked rows: 13 tiles, 9 rows of remainder in the first; 25 000 masked: 8 in the first.
  assert.deepEqual(
    sizes.slice(0, 13),
    [1929, 1920, 1920, 1920, 1920, 1920, 1936, 1920, 1920, 1920, 1920, 1920, 1936],
  );
  assert.equal(sizes[13], 1928);
  assert.ok(sizes.every((s, i) => s <= 2048 && (i === 0 || i === 13 || s % 16 === 0)));
  const oddColumns = layout.blocks.filter((b) => (b.cols.end - b.cols.start) % 16 !== 0);
  // The first strip of each group's first tile, and the unmasked tiles against the masked first.
  assert.equal(oddColumns.length, 2 + 13);
  // Tiny tiles still split evenly.
  assert.deepEqual(
    makeLayout([0, 1, 2, 3, 4, 5, 6], undefined, 3).tiles.map((t) => t.end - t.start),
    [2, 2, 3],
  );
});
