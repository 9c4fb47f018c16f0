import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { decodeFaces, flipHorizontal, loadVerificationSet, verifySet } from "../../src/eval/bin.ts";
import { flipSumNormalise, foldBounds, kfoldAccuracy } from "../../src/eval/kfold.ts";

// Fixtures written by scripts/make-eval-fixtures.py.
const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), "../fixtures/eval");
const at = (f: string) => path.join(dir, f);

test(".bin sets written at protocol 2 (Python 2 and 3 styles) and 4 parse to the same data", () => {
  const sets = ["tiny-py2.bin", "tiny-p2.bin", "tiny-p4.bin"].map((f) => loadVerificationSet(at(f)));
  for (const s of sets) {
    assert.deepEqual(s.issame, [true, false, true]);
    assert.equal(s.images.length, 6);
    for (const img of s.images) assert.deepEqual([img[0], img[1]], [0xff, 0xd8]); // JPEG SOI
    assert.deepEqual(s.images, sets[0]!.images);
  }
});

test("a malicious pickle (GLOBAL/STACK_GLOBAL + REDUCE) is refused, naming the file", () => {
  assert.throws(
    () => loadVerificationSet(at("evil-global.bin")),
    (e: Error) => {
      assert.match(e.message, /evil-global\.bin/);
      assert.match(e.message, /os\.system.*not allowed/);
      return true;
    },
  );
  assert.throws(
    () => loadVerificationSet(at("evil-p4.bin")),
    /evil-p4\.bin.*(posix|os|nt)\.system.*not allowed/,
  );
  assert.throws(() => loadVerificationSet(at("kfold.json")), /kfold\.json/);
});

test("faces decode to normalised CHW floats; flips mirror them", async () => {
  const set = loadVerificationSet(at("tiny-p4.bin"));
  const imgs = await decodeFaces(set.images.slice(0, 1), 24);
  const px = (c: number, y: number, x: number) => imgs[c * 576 + y * 24 + x]!;
  const norm = (v: number) => (v / 255 - 0.5) / 0.5;
  // Image 0: left half (200, 30, 30), right half (30, 200, 30); JPEG is lossy, allow a little.
  assert.ok(Math.abs(px(0, 12, 2) - norm(200)) < 0.05 && Math.abs(px(1, 12, 21) - norm(200)) < 0.05);
  const flipped = flipHorizontal(imgs, 24);
  assert.equal(flipped[0 * 576 + 5 * 24 + 3], px(0, 5, 20));
  const bigger = await decodeFaces(set.images.slice(0, 2), 112);
  assert.equal(bigger.length, 2 * 3 * 112 * 112);
});

test("10-fold accuracy matches arcface_torch's verification.py (numpy reference)", () => {
  const ref = JSON.parse(fs.readFileSync(at("kfold.json"), "utf8")) as {
    first: number[][];
    second: number[][];
    issame: boolean[];
    foldAccuracy: number[];
    bestThreshold: number[];
    accuracy: number;
    std: number;
  };
  const emb = flipSumNormalise(ref.first.flat(), ref.second.flat(), 4);
  const got = kfoldAccuracy(emb, 4, ref.issame);
  assert.deepEqual(got.foldAccuracy, ref.foldAccuracy);
  assert.deepEqual(got.bestThreshold, ref.bestThreshold);
  assert.ok(Math.abs(got.accuracy - ref.accuracy) < 1e-12);
  assert.ok(Math.abs(got.std - ref.std) < 1e-12);
  assert.deepEqual(foldBounds(23, 10)[0], [0, 3]);
  assert.deepEqual(foldBounds(23, 10)[9], [21, 23]);
});

test("verifySet embeds each image and its flip in batches and scores the flip-sum", async () => {
  const set = loadVerificationSet(at("tiny-py2.bin"));
  let calls = 0;
  // A toy backbone: mean of each channel over the left and the right half (not flip-invariant).
  const embed = (images: Float32Array, count: number) => {
    calls++;
    const out = new Float32Array(count * 6);
    for (let n = 0; n < count; n++)
      for (let c = 0; c < 3; c++)
        for (let y = 0; y < 24; y++)
          for (let x = 0; x < 24; x++)
            out[n * 6 + c * 2 + (x < 12 ? 0 : 1)]! += images[((n * 3 + c) * 24 + y) * 24 + x]!;
    return out;
  };
  const r = await verifySet(set, embed, { imageSize: 24, batchSize: 4, folds: 3 });
  assert.equal(calls, 4); // 2 batches x (image, flip)
  assert.equal(r.pairs, 3);
  assert.equal(r.foldAccuracy.length, 3);
  assert.ok(r.accuracy >= 0 && r.accuracy <= 1 && r.xnorm > 0);
});
