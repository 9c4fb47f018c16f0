import { test } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/torch/index.ts";
import { valuesAbove } from "../../src/eval/extract.ts";
import { highBuckets, lowBits, orderKeys, scoreOfKey } from "../../src/eval/radix.ts";

test("valuesAbove returns every score above the floor (segments and the remainder)", () => {
  T.manualSeed(1);
  for (const [h, w] of [
    [37, 50],
    [16, 3],
    [5, 9],
    [64, 64],
  ] as const) {
    const s = T.randn([h, w]);
    s.maskedFill_(s.lt(-1), -Infinity);
    const all = Array.from(s.data() as Float32Array);
    for (const floor of [-Infinity, 0.5, 2.5, 10]) {
      const got = Array.from(valuesAbove(s, floor))
        .filter((v) => v > floor)
        .sort();
      const want = all.filter((v) => v > floor).sort();
      assert.deepEqual(got, want, `${h}x${w} floor ${floor}`);
    }
  }
});

test("order keys sort like the floats and map back exactly", () => {
  const vals = [-1, -0.75, -1e-30, -0, 0, 1e-30, 0.3, 0.30000001192092896, 1, 1.0000001192092896];
  const t = T.tensor(Float32Array.from(vals));
  const keys = orderKeys(t);
  const k = Array.from(keys.data() as Int32Array);
  for (let i = 1; i < k.length; i++) assert.ok(k[i]! >= k[i - 1]!, `key order at ${vals[i]}`);
  const hi = Array.from(highBuckets(keys).data() as Int32Array);
  const lo = Array.from(lowBits(keys).data() as Int32Array);
  vals.forEach((v, i) => assert.equal(scoreOfKey(hi[i]!, lo[i]!), Math.fround(v)));
});

test("valuesAbove with need > 0 returns at least the need largest (segments and the remainder)", () => {
  T.manualSeed(2);
  for (const [h, w] of [
    [37, 50],
    [16, 3],
    [128, 64],
  ] as const) {
    const s = T.randn([h, w]);
    const sorted = Array.from(s.data() as Float32Array).sort((a, b) => b - a);
    for (const need of [1, 7, 200, h * w]) {
      const got = Array.from(valuesAbove(s, Infinity, need)).sort((a, b) => b - a);
      const want = sorted.slice(0, Math.min(need, sorted.length));
      assert.deepEqual(got.slice(0, want.length), want, `${h}x${w} need ${need}`);
    }
  }
});
