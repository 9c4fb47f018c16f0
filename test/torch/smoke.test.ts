import { test } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/torch/index.ts";

test("add", () => {
  assert.deepEqual(T.tensor([1, 2]).add(1).toArray(), [2, 3]);
});
