import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { DataLoader, type BadSampleWarning, type Batch } from "../../src/data/loader.ts";
import { RecDataset } from "../../src/data/rec-dataset.ts";
import { FileCache, readSample } from "../../src/data/dataset.ts";
import { ImageDecoder } from "../../src/data/decode.ts";
import { tinyFolder, tinyRec } from "./helpers.ts";

/** Collects an epoch; images are copied because the loader reuses batch buffers. */
const collect = async (it: AsyncIterable<Batch>): Promise<Batch[]> => {
  const out: Batch[] = [];
  for await (const b of it) out.push({ ...b, images: b.images.slice() });
  return out;
};

test("batches: NCHW float in [-1, 1], labels of the records, mask flags, whole epoch covered", async () => {
  const dir = await tinyRec(6, 4);
  const L = await DataLoader.open(dir, { batchSize: 8, workers: 2, seed: 7, maskVariants: 2 });
  try {
    const ds = L.dataset as RecDataset;
    const batches = await collect(L.epoch(0));
    assert.equal(batches.length, 3);
    const seen = new Set<number>();
    let masked = 0;
    for (const b of batches) {
      assert.deepEqual(b.shape, [8, 3, 112, 112]);
      assert.ok(b.images instanceof Float32Array && b.images.length === 8 * 3 * 112 * 112);
      assert.ok(b.images.every((x) => x >= -1 && x <= 1));
      b.indices.forEach((idx, r) => {
        seen.add(idx);
        assert.equal(b.labels[r], ds.labelOf(idx));
      });
      masked += b.masked.reduce((a, x) => a + x, 0);
    }
    assert.equal(seen.size, 24);
    assert.ok(masked > 0 && masked < 24, `${masked} of 24 masked at p = 0.35`);
  } finally {
    await L.close();
  }
});

test("resuming from a step reproduces the remaining batches exactly (order, flips, masks, pixels)", async () => {
  const dir = await tinyRec(5, 4);
  const o = {
    batchSize: 4,
    workers: 2,
    seed: 3,
    maskProb: 0.5,
    maskVariants: 2,
    shuffleBuffer: 6,
    chunkSize: 2,
  };
  const a = await DataLoader.open(dir, o);
  const b = await DataLoader.open(dir, { ...o, workers: 1 });
  try {
    const full = await collect(a.epoch(2));
    const resumed = await collect(b.epoch(2, 3));
    assert.equal(resumed.length, full.length - 3);
    resumed.forEach((r, i) => {
      const f = full[i + 3]!;
      assert.equal(r.step, f.step);
      assert.deepEqual(r.indices, f.indices);
      assert.deepEqual(r.masked, f.masked);
      assert.deepEqual(r.flipped, f.flipped);
      assert.deepEqual(r.images, f.images);
    });
  } finally {
    await a.close();
    await b.close();
  }
});

test("u8 NHWC rows are the decoded JPEG, mirrored when flipped", async () => {
  const dir = await tinyRec(2, 2);
  const common = {
    batchSize: 4,
    workers: 1,
    seed: 1,
    shuffle: false,
    maskProb: 0,
    dtype: "u8",
    layout: "nhwc",
  } as const;
  const plain = await DataLoader.open(dir, { ...common, flipProb: 0 });
  const flipped = await DataLoader.open(dir, { ...common, flipProb: 1 });
  try {
    const [p] = await collect(plain.epoch(0));
    const [f] = await collect(flipped.epoch(0));
    const ds = plain.dataset as RecDataset;
    const files = new FileCache();
    const { bytes } = readSample(ds.locate(0), files);
    files.close();
    // what a worker's decoder makes of it (the default jpegMode; test/data/decode.test.ts checks them)
    const ref = Buffer.from(await new ImageDecoder(112).decode(bytes));
    assert.deepEqual(Buffer.from(p!.images.subarray(0, ref.length)), ref);
    const row = (img: Uint8Array, y: number, x: number): number[] => [
      ...img.subarray((y * 112 + x) * 3, (y * 112 + x) * 3 + 3),
    ];
    for (const [y, x] of [
      [0, 0],
      [50, 10],
      [111, 111],
    ] as const)
      assert.deepEqual(row(f!.images as Uint8Array, y, x), row(p!.images as Uint8Array, y, 111 - x));
  } finally {
    await plain.close();
    await flipped.close();
  }
});

/** Breaks record `key`'s JPEG (structure intact) and record `key2`'s RecordIO magic. */
function corrupt(dir: string, key: number, key2: number): void {
  const rec = path.join(dir, "train.rec");
  const idx = readFileSync(path.join(dir, "train.idx"), "utf8").split("\n");
  const off = (k: number): number => Number(idx[k]!.split("\t")[1]);
  const buf = readFileSync(rec);
  buf.fill(0x55, off(key) + 8 + 24, off(key) + 8 + 24 + 40); // JPEG header -> garbage
  buf.writeUInt32LE(0x12345678, off(key2)); // bad magic
  writeFileSync(rec, buf);
}

test("bad records are skipped with a counted warning naming them; too many stop the run", async () => {
  const dir = await tinyRec(5, 4);
  corrupt(dir, 3, 11);
  const L = await DataLoader.open(dir, {
    batchSize: 4,
    workers: 2,
    seed: 1,
    maskProb: 0,
    maxBadFraction: 0.1,
  });
  const warnings: BadSampleWarning[] = [];
  L.on("warning", (w) => warnings.push(w));
  try {
    const batches = await collect(L.epoch(0));
    assert.equal(batches.length, 5);
    assert.ok(batches.every((b) => b.labels.length === 4));
    assert.deepEqual(warnings.map((w) => w.where.replace(/.*\//, "")).sort(), [
      "train.rec record 11",
      "train.rec record 3",
    ]);
    assert.deepEqual(warnings.map((w) => w.bad).sort(), [1, 2]);
    assert.match(warnings.find((w) => w.where.endsWith("record 11"))!.reason, /bad magic/);
    assert.equal(L.stats.bad, 2);
    const used = batches.flatMap((b) => [...b.indices]);
    assert.ok(!used.includes(2) && !used.includes(10), "bad samples never reach a batch");
    // A second epoch does not warn again about known bad samples.
    await collect(L.epoch(1));
    assert.equal(warnings.length, 2);
  } finally {
    await L.close();
  }
  const strict = await DataLoader.open(dir, {
    batchSize: 4,
    workers: 1,
    seed: 1,
    maskProb: 0,
    maxBadFraction: 0.05,
  });
  try {
    await assert.rejects(
      collect(strict.epoch(0)),
      /2 of 20 samples are bad, more than data\.maxBadFraction = 0\.05/,
    );
  } finally {
    await strict.close();
  }
});

test("an undecodable image in a folder dataset is skipped with a warning naming the file", async () => {
  const dir = await tinyFolder(3, 3);
  const bad = path.join(dir, "000001", "001.jpg");
  writeFileSync(bad, Buffer.from("not a jpeg at all"));
  const L = await DataLoader.open(dir, {
    batchSize: 3,
    workers: 1,
    seed: 2,
    maskProb: 0,
    maxBadFraction: 0.2,
  });
  const warnings: BadSampleWarning[] = [];
  L.on("warning", (w) => warnings.push(w));
  try {
    const batches = await collect(L.epoch(0));
    assert.equal(batches.length, 3);
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.where, bad);
  } finally {
    await L.close();
  }
});

test("the zero-copy u8 NHWC path gives the same pixels, flips and masks as f32 NCHW", async () => {
  const dir = await tinyRec(3, 2);
  const o = { batchSize: 6, workers: 1, seed: 4, maskProb: 0.6, maskVariants: 2 } as const;
  const f = await DataLoader.open(dir, o);
  const u = await DataLoader.open(dir, { ...o, dtype: "u8", layout: "nhwc" });
  try {
    const [a] = await collect(f.epoch(0));
    const [b] = await collect(u.epoch(0));
    assert.deepEqual(a!.masked, b!.masked);
    assert.deepEqual(a!.flipped, b!.flipped);
    assert.ok(a!.masked.some((m) => m === 1) && a!.flipped.some((x) => x === 1));
    const P = 112 * 112;
    for (let n = 0; n < 6; n++)
      for (let p = 0; p < P; p += 7)
        for (let c = 0; c < 3; c++) {
          const fv = a!.images[n * 3 * P + c * P + p]!;
          assert.equal(Math.round(fv * 127.5 + 127.5), b!.images[(n * P + p) * 3 + c]);
        }
  } finally {
    await f.close();
    await u.close();
  }
});
