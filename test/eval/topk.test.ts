import { test } from "node:test";
import assert from "node:assert/strict";
import { TopScores, mergeDescending, sortDescending } from "../../src/eval/topk.ts";

test("TopScores keeps the k largest values, ties included, whatever the arrival order", () => {
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (const k of [0, 1, 2, 5, 37, 500]) {
    const all = Float32Array.from({ length: 3000 }, () => Math.round(rnd() * 40) / 8); // many ties
    const top = new TopScores(k);
    for (let o = 0; o < all.length; o += 97) top.push(all.subarray(o, o + 97));
    const want = all.slice().sort().reverse().slice(0, k);
    assert.deepEqual(Array.from(top.sortedDescending()), Array.from(want), `k=${k}`);
  }
});

test("TopScores holds everything when fewer than k arrive", () => {
  const top = new TopScores(10);
  top.push(Float32Array.of(0.5, -1, 0.5));
  assert.deepEqual(Array.from(top.sortedDescending()), [0.5, 0.5, -1]);
});

test("TopScores with a lower bound keeps the k largest above it, or all of those when fewer came", () => {
  const values = Float32Array.from({ length: 400 }, (_, i) => ((i * 37) % 101) / 100); // ties
  for (const [k, above] of [
    [10, 0.5],
    [300, 0.5],
    [1, 0.99],
    [5, 2],
  ] as const) {
    const top = new TopScores(k, above);
    for (let o = 0; o < values.length; o += 33) top.push(values.subarray(o, o + 33));
    const want = Array.from(values)
      .filter((v) => v > above)
      .sort((a, b) => b - a)
      .slice(0, k);
    assert.deepEqual(Array.from(top.sortedDescending()), want, `k=${k} above ${above}`);
    assert.ok(top.floor >= above);
  }
});

test("sortDescending orders floats like the comparison (signed zeros, infinities, ties, large arrays)", () => {
  let seed = 3;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (const n of [0, 1, 100, 5000, 70000]) {
    const a = Float32Array.from({ length: n }, () => Math.round((rnd() - 0.5) * 2000) / 300);
    if (n > 10) a.set([-0, 0, Infinity, -Infinity, 1e-40, -1e-40, 3.4e38, -3.4e38], 0);
    const want = a.slice().sort().reverse();
    const got = sortDescending(a.slice());
    assert.equal(got.length, n);
    for (let i = 0; i < n; i++) assert.ok(got[i] === want[i], `n=${n} at ${i}: ${got[i]} vs ${want[i]}`);
  }
});

test("mergeDescending takes the k largest of sorted parts", () => {
  const parts = [Float32Array.of(5, 3, 3, 1), Float32Array.of(4, 3, 0), Float32Array.of()];
  assert.deepEqual(Array.from(mergeDescending(parts, 5)), [5, 4, 3, 3, 3]);
  assert.deepEqual(Array.from(mergeDescending(parts, 100)), [5, 4, 3, 3, 3, 1, 0]);
});
