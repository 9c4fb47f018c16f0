import { test } from "node:test";
import assert from "node:assert/strict";
import { parseFpr, parseFprList, thresholdRank } from "../../src/eval/fpr.ts";

test("k = floor(x·n) + 1 in exact decimal arithmetic, clamped to n", () => {
  assert.equal(thresholdRank(parseFpr("1e-5"), 100000), 2);
  assert.equal(thresholdRank(parseFpr("1e-5"), 99999), 1);
  assert.equal(thresholdRank(parseFpr("0.00001"), 1_250_000_000), 12501);
  // 0.1 * 3 is 0.30000000000000004 in doubles; exactly 0.3 here: floor = 0, k = 1.
  assert.equal(thresholdRank(parseFpr("0.1"), 3), 1);
  assert.equal(thresholdRank(parseFpr("0.1"), 10), 2);
  assert.equal(thresholdRank(parseFpr("0.3"), 10), 4);
  assert.equal(thresholdRank(parseFpr("0"), 7), 1);
  assert.equal(thresholdRank(parseFpr("1"), 7), 7); // k = 8 > n: τ = s_n
  assert.equal(thresholdRank(parseFpr("0.999"), 1000), 1000);
  assert.equal(thresholdRank(parseFpr("1e-5"), 0), 0);
  assert.equal(thresholdRank(parseFpr("2.5E-1"), 8), 3);
});

test("FPR lists keep the typed text as keys and refuse nonsense", () => {
  assert.deepEqual(
    parseFprList("1e-6, 1e-5,0.0001").map((f) => f.key),
    ["1e-6", "1e-5", "0.0001"],
  );
  assert.throws(() => parseFpr("abc"), /not a decimal number/);
  assert.throws(() => parseFpr("-1e-5"), /not a decimal number|between 0 and 1/);
  assert.throws(() => parseFpr("2"), /between 0 and 1/);
  assert.throws(() => parseFprList("1e-5,1e-5"), /twice/);
});
