import { test } from "node:test";
import assert from "node:assert/strict";
import { RecordIndexBuilder } from "../../src/data/record-index.ts";
import { Rng } from "../../src/data/rng.ts";

/** Offsets of records of the given sizes (4-aligned), laid end to end from `start`. */
function layout(sizes: number[], start = 0): number[] {
  const out: number[] = [];
  let pos = start;
  for (const s of sizes) {
    out.push(pos);
    pos += 8 + ((s + 3) & ~3);
  }
  return out;
}

test("an InsightFace-like index keeps about 2 bytes a record and returns every offset exactly", () => {
  const rng = new Rng(7);
  const n = 100_000;
  // JPEGs of 2-20 KB, a few above the 256 KiB a uint16 step holds, offsets past 2^32.
  const sizes = Array.from({ length: n }, (_, i) => (i % 9973 === 5 ? 300_000 : 2000 + rng.int(18000)));
  const offsets = layout(sizes, 2 ** 33);
  const b = new RecordIndexBuilder(n);
  offsets.forEach((o, i) => b.push(i, o));
  const index = b.done();
  assert.equal(index.length, n);
  assert.equal(index.contiguousFrom, 0);
  for (let i = 0; i < n; i++) assert.equal(index.offsetAt(i), offsets[i], `record ${i}`);
  assert.equal(index.keyAt(n - 1), n - 1);
  assert.equal(index.positionOf(n), -1);
  assert.equal(index.lastPosition, n - 1);
  assert.ok(index.bytes / n < 2.3, `${(index.bytes / n).toFixed(2)} bytes a record`);
});

test("scattered keys and offsets out of file order are kept exactly", () => {
  const offsets = layout([100, 5, 70000 * 4, 12, 40, 8]);
  const keys = [10, 3, 7, 42, 8, 1];
  const order = [3, 0, 5, 1, 2, 4]; // index lines not in file order
  const b = new RecordIndexBuilder(2);
  for (const i of order) b.push(keys[i]!, offsets[i]!);
  const index = b.done();
  assert.equal(index.contiguousFrom, null);
  order.forEach((i, p) => {
    assert.equal(index.keyAt(p), keys[i]);
    assert.equal(index.offsetAt(p), offsets[i]);
    assert.equal(index.positionOf(keys[i]!), p);
  });
  assert.equal(index.positionOf(11), -1);
  assert.equal(index.offsetAt(index.lastPosition), Math.max(...offsets));
  // Sorted scattered keys are searched, not mapped.
  const s = new RecordIndexBuilder(4);
  [2, 5, 9, 20].forEach((k, i) => s.push(k, i * 16));
  const sorted = s.done();
  assert.deepEqual(
    [2, 5, 9, 20, 3].map((k) => sorted.positionOf(k)),
    [0, 1, 2, 3, -1],
  );
});
