import { test } from "node:test";
import assert from "node:assert/strict";
import { TopScores } from "../../src/eval/topk.ts";

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
