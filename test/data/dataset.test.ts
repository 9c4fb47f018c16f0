import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import {
  FileCache,
  RecDataset,
  maskFolder,
  openDataset,
  openListDataset,
  readLandmarks,
  readSample,
} from "../../src/data/index.ts";
import { ARCFACE_TEMPLATE } from "../../src/data/mask/template.ts";
import { tinyFolder, tinyRec, tmp } from "./helpers.ts";

test("image folders: identities are sub-folders with images, numbered in sorted order", async () => {
  const src = await tinyFolder(1, 2);
  const jpg = path.join(src, "000000", "000.jpg");
  const root = tmp("layout");
  for (const [dir, files] of [
    ["b", ["2.jpg", "1.jpg"]],
    ["a", ["x.png.jpg"]],
    ["c10", ["0.jpeg"]],
    ["c9", ["0.JPG", "notes.txt"]],
    ["empty", []],
  ] as const) {
    mkdirSync(path.join(root, dir), { recursive: true });
    for (const f of files) copyFileSync(jpg, path.join(root, dir, f));
  }
  const ds = openDataset(root);
  assert.equal(ds.kind, "folder");
  assert.equal(ds.numClasses, 4);
  const rows = Array.from({ length: ds.length }, (_, i) => [
    path.relative(root, ds.describe(i)),
    ds.labelOf(i),
  ]);
  assert.deepEqual(rows, [
    ["a/x.png.jpg", 0],
    ["b/1.jpg", 1],
    ["b/2.jpg", 1],
    ["c10/0.jpeg", 2],
    ["c9/0.JPG", 3],
  ]);
});

test("list files: 'path label' and InsightFace's 'flag<TAB>path<TAB>label', errors naming the line", async () => {
  const root = await tinyFolder(2, 2);
  const plain = path.join(root, "train.lst");
  writeFileSync(plain, "# comment\n000000/000.jpg 0\n000001/001.jpg 1\n\n");
  const a = openListDataset(plain);
  assert.equal(a.length, 2);
  assert.equal(a.numClasses, 2);
  assert.equal(a.describe(1), path.join(root, "000001/001.jpg"));
  const tabbed = path.join(root, "face2rec.lst");
  writeFileSync(tabbed, "0\t000001/000.jpg\t3\t1 2 3\n");
  const b = openDataset(tabbed);
  assert.equal(b.labelOf(0), 3);
  assert.equal(b.numClasses, 4);
  const files = new FileCache();
  assert.deepEqual(readSample(b.locate(0), files).bytes, readFileSync(path.join(root, "000001/000.jpg")));
  files.close();
  const bad = path.join(root, "bad.lst");
  writeFileSync(bad, "000000/000.jpg 0\n000000/001.jpg minus-one\n");
  assert.throws(() => openListDataset(bad), new RegExp(`${bad.replace(/[.]/g, "\\.")}:2: expected`));
});

test("a .rec without its .idx is indexed by scanning, with the same records", async () => {
  const dir = await tinyRec(2, 3);
  const withIdx = new RecDataset(dir);
  const files = new FileCache();
  const before = Array.from({ length: withIdx.length }, (_, i) => readSample(withIdx.locate(i), files));
  withIdx.close();
  rmSync(path.join(dir, "train.idx"));
  const scanned = new RecDataset(dir);
  assert.equal(scanned.length, before.length);
  before.forEach((s, i) => assert.deepEqual(readSample(scanned.locate(i), files), s));
  files.close();
  scanned.close();
});

test("mfr mask: a folder is masked reproducibly from the seed, with landmarks where given", async () => {
  const src = await tinyFolder(2, 2);
  const lm = path.join(src, "landmarks.txt");
  writeFileSync(
    lm,
    `000001/001.jpg ${ARCFACE_TEMPLATE.flat()
      .map((v) => v + 3)
      .join(" ")}\n`,
  );
  const landmarks = readLandmarks(lm);
  const [o1, o2, o3] = [tmp("mask"), tmp("mask"), tmp("mask")];
  const r = await maskFolder(src, o1, { seed: 1, landmarks });
  const all = ["000000/000.jpg", "000000/001.jpg", "000001/000.jpg", "000001/001.jpg"];
  assert.deepEqual(r, { images: 4, masked: 4, written: new Map(all.map((f) => [f, true])), failed: [] });
  await maskFolder(src, o2, { seed: 1, landmarks });
  await maskFolder(src, o3, { seed: 2, landmarks });
  const f = "000001/001.jpg";
  assert.deepEqual(readFileSync(path.join(o1, f)), readFileSync(path.join(o2, f)));
  assert.notDeepEqual(readFileSync(path.join(o1, f)), readFileSync(path.join(o3, f)));
  assert.notDeepEqual(readFileSync(path.join(o1, f)), readFileSync(path.join(src, f)));
  writeFileSync(path.join(src, "000000", "broken.jpg"), "no image");
  const r2 = await maskFolder(src, tmp("mask"), { seed: 1, prob: 0 });
  assert.equal(r2.masked, 0);
  assert.equal(r2.failed.length, 0, "prob 0 copies, even unreadable files");
  const r3 = await maskFolder(src, tmp("mask"), { seed: 1 });
  assert.deepEqual(
    r3.failed.map((x) => x.file),
    [path.join(src, "000000", "broken.jpg")],
  );
});
