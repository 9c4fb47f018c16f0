import { test } from "node:test";
import assert from "node:assert/strict";
import { batchToTensors } from "../../src/data/tensors.ts";
import type { Batch } from "../../src/data/loader.ts";

const batch = (images: Float32Array | Uint8Array, shape: Batch["shape"]): Batch => ({
  epoch: 0,
  step: 0,
  images,
  shape,
  labels: Int32Array.of(3, 1),
  masked: Uint8Array.of(1, 0),
  flipped: Uint8Array.of(0, 0),
  indices: Int32Array.of(0, 1),
});

test("a batch becomes x [N,3,H,W] f32, y int64, masked bool", () => {
  const f = new Float32Array(2 * 3 * 2 * 2).map((_, i) => i / 24);
  const t = batchToTensors(batch(f, [2, 3, 2, 2]));
  assert.deepEqual(t.x.shape, [2, 3, 2, 2]);
  assert.deepEqual(t.y.toArray(), [3, 1]);
  assert.equal(t.y.dtype, "i64");
  assert.equal(t.masked.dtype, "bool");
  assert.deepEqual([...(t.x.data() as Float32Array)], [...f]);
});

test("u8 NHWC batches are permuted and normalised in libtorch", () => {
  const u = new Uint8Array(2 * 2 * 2 * 3).map((_, i) => i * 10);
  const t = batchToTensors(batch(u, [2, 2, 2, 3]));
  assert.deepEqual(t.x.shape, [2, 3, 2, 2]);
  const x = t.x.data() as Float32Array;
  // x[0, c=1, y=0, x=1] = pixel (0, 1) channel 1 = u[(0*2+1)*3+1] = 40
  assert.ok(Math.abs(x[1 * 4 + 1]! - (40 - 127.5) / 127.5) < 1e-6);
});
