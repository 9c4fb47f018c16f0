import { test } from "node:test";
import assert from "node:assert/strict";
import { batchToTensors, prefetchToDevice } from "../../src/data/tensors.ts";
import type { Batch } from "../../src/data/loader.ts";
import { native } from "../../src/torch/native.ts";

const batch = (images: Float32Array | Uint8Array, shape: Batch["shape"]): Batch => ({
  epoch: 0,
  step: 0,
  images,
  shape,
  labels: Int32Array.of(3, 1),
  masked: Uint8Array.of(1, 0),
  maskVariant: Uint8Array.of(1, 0),
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

const labelled = (label: number): Batch => ({
  ...batch(new Float32Array(2 * 3 * 2 * 2), [2, 3, 2, 2]),
  labels: Int32Array.of(label, label + 1),
});
async function* source(labels: number[], read: number[]): AsyncGenerator<Batch> {
  for (const l of labels) {
    read.push(l);
    yield labelled(l);
  }
}

test("prefetch hands out every batch in order, one read ahead, freeing each when the next is asked for", async () => {
  const read: number[] = [];
  const seen: { y: number[]; readWhenHanded: number }[] = [];
  let previous: ReturnType<typeof batchToTensors> | undefined;
  for await (const t of prefetchToDevice(source([10, 20, 30], read), "cpu")) {
    assert.ok(!previous || (previous.x.disposed && previous.y.disposed && previous.masked.disposed));
    seen.push({ y: t.y.toArray(), readWhenHanded: read.length });
    previous = t;
  }
  assert.deepEqual(seen, [
    { y: [10, 11], readWhenHanded: 2 },
    { y: [20, 21], readWhenHanded: 3 },
    { y: [30, 31], readWhenHanded: 3 },
  ]);
  assert.ok(previous!.x.disposed, "the last batch is freed when the loop ends");
});

test("leaving a prefetch loop early frees the batch in hand and the one read ahead", async () => {
  const live = native.liveCount();
  for await (const t of prefetchToDevice(source([1, 2, 3], []))) {
    assert.equal(t.y.toArray()[0], 1);
    break;
  }
  assert.equal(native.liveCount(), live);
});
