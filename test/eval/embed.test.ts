// Embedding extraction: a checkpoint in libtorch and its export in onnxruntime-node (fixed batch,
// so the last batch is padded) give the same embeddings and labels in dataset order; --flip adds
// the mirrored image's embedding; flat image folders embed without labels; the CLI's .npy files
// feed `mfr eval`.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import * as T from "../../src/torch/index.ts";
import { synthesizeDataset } from "../../src/data/index.ts";
import { loadBackboneCheckpoint } from "../../src/models/index.ts";
import { OnnxEmbedder, TorchEmbedder, embedDataset, embedToFiles } from "../../src/eval/index.ts";
import {
  compareEmbeddings,
  exportCheckpoint,
  flipImages,
  mfrForward,
  openImageSource,
  readImages,
} from "../../src/export/index.ts";
import { mfrOk, tinyCheckpoint } from "../export/helpers.ts";

let dir = "";
let faces = "";
let ckpt = "";
let onnx = "";

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "mfr-embed-"));
  faces = path.join(dir, "faces");
  await synthesizeDataset({ out: faces, identities: 3, imagesPerIdentity: 3, seed: 4 });
  ckpt = tinyCheckpoint("r18", dir);
  onnx = path.join(dir, "r18-b4.onnx");
  const r = await exportCheckpoint({
    checkpoint: ckpt,
    out: onnx,
    foldBatchNorm: true,
    batch: 4,
    verify: false,
  });
  assert.equal(r.info.outputShape.join(), "4,32");
});
after(() => rmSync(dir, { recursive: true, force: true }));

test("libtorch and onnxruntime-node (fixed batch 4, padded tail) embed a dataset alike, in order", async () => {
  const torch = new TorchEmbedder(loadBackboneCheckpoint(ckpt).model);
  const ort = await OnnxEmbedder.open(onnx);
  assert.equal(ort.fixedBatch, 4);
  const a = await embedDataset(torch, faces, { batchSize: 5 });
  const progress: number[] = [];
  const b = await embedDataset(ort, faces, { onProgress: (p) => progress.push(p.done) });
  assert.deepEqual(progress, [0, 4, 8, 9]);
  assert.equal(a.count, 9);
  assert.equal(a.dim, 32);
  assert.deepEqual(Array.from(a.labels), [0, 0, 0, 1, 1, 1, 2, 2, 2]);
  assert.deepEqual(Array.from(b.labels), Array.from(a.labels));
  const c = compareEmbeddings(b.embeddings, a.embeddings, 32);
  assert.ok(c.maxAbsDiff <= 1e-4 && c.minCosine >= 0.99999, JSON.stringify(c));

  // --flip: each row is emb(x) + emb(mirror(x)).
  const f = await embedDataset(ort, faces, { flip: true });
  const { dataset } = openImageSource(faces);
  const images: Float32Array[] = [];
  for await (const batch of readImages(dataset, { batchSize: 9 })) images.push(batch.images);
  const plain = mfrForward(torch.model, images[0]!, 9);
  const mirrored = mfrForward(torch.model, flipImages(images[0]!), 9);
  const want = plain.map((v, i) => v + mirrored[i]!);
  const cf = compareEmbeddings(f.embeddings, want, 32);
  assert.ok(cf.maxAbsDiff <= 2e-4 && cf.minCosine >= 0.99999, JSON.stringify(cf));
  await torch.close();
  await ort.close();
});

test("a flat folder of images embeds without labels; asking for labels, or a broken image, is an error", async () => {
  const flat = path.join(dir, "flat");
  mkdirSync(flat);
  for (const [id, k] of [
    ["000001", 0],
    ["000002", 1],
  ] as const)
    copyFileSync(path.join(faces, id, `00${k}.jpg`), path.join(flat, `${id}-${k}.jpg`));
  const ort = await OnnxEmbedder.open(onnx);
  const e = await embedDataset(ort, flat);
  assert.equal(e.count, 2);
  assert.equal(e.labelled, false);
  await assert.rejects(
    embedToFiles(ort, flat, { embeddings: path.join(dir, "x.npy"), labels: path.join(dir, "y.npy") }),
    /no labels to write/,
  );
  // A broken image stops the run with its name; it is never replaced by another image.
  writeFileSync(path.join(flat, "zz-broken.jpg"), Buffer.from([0xff, 0xd8, 0xff, 0x00, 0x01]));
  await assert.rejects(embedDataset(ort, flat), /zz-broken\.jpg/);
  await ort.close();
});

test("mfr embed writes .npy files that mfr eval reads; mfr eval --model gives the same", () => {
  const e = path.join(dir, "e.npy");
  const l = path.join(dir, "l.npy");
  const out = mfrOk("embed", "--model", onnx, "--data", faces, "--out", e, "--labels", l, "--flip");
  assert.match(out, /9 images -> .*e\.npy \[9, 32\].*onnxruntime-node, flip/);
  T.scope(() => {
    const emb = T.loadNpy(e);
    assert.deepEqual(emb.shape, [9, 32]);
    assert.equal(emb.dtype, "f32");
    const lab = T.loadNpy(l);
    assert.equal(lab.dtype, "i64");
    assert.deepEqual(lab.toArray(), [0, 0, 0, 1, 1, 1, 2, 2, 2]);
  });
  const ev = JSON.parse(mfrOk("eval", "--embeddings", e, "--labels", l, "--json")) as {
    pairs: { genuine: number; impostor: number };
  };
  assert.deepEqual(ev.pairs, { genuine: 9, impostor: 27 });
  // mfr eval --model embeds the set itself, to the same result.
  const direct = mfrOk("eval", "--model", onnx, "--data", faces, "--flip", "--json");
  assert.deepEqual(JSON.parse(direct), ev);
});
