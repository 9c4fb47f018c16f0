// `mfr mask --groups`: the mask group of every image, in the order `mfr eval --data` embeds them,
// so that a masked test set and its groups cannot disagree. The check is against the files
// themselves: a masked image differs from its original, an unmasked one is a byte-for-byte copy.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openFolderDataset, synthesizeDataset } from "../../src/data/index.ts";
import * as T from "../../src/torch/index.ts";
import { mfrSync } from "../helpers/mfr.ts";

test("mfr mask --groups writes each image's group in dataset order", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-mask-groups-"));
  const faces = path.join(dir, "faces");
  await synthesizeDataset({ out: faces, identities: 12, imagesPerIdentity: 3, seed: 3 });
  const out = path.join(dir, "masked");
  const groupsFile = path.join(dir, "groups.npy");
  const r = mfrSync("mask", faces, out, "--prob", "0.5", "--seed", "4", "--groups", groupsFile);
  assert.equal(r.status, 0, r.stderr);
  const groups = T.scope(() => T.loadNpy(groupsFile).toArray());
  const ds = openFolderDataset(out);
  assert.equal(groups.length, ds.length);
  let masked = 0;
  for (let i = 0; i < ds.length; i++) {
    const rel = path.relative(out, ds.file(i));
    const same = fs.readFileSync(ds.file(i)).equals(fs.readFileSync(path.join(faces, rel)));
    assert.equal(
      groups[i],
      same ? 0 : 1,
      `${rel}: group ${groups[i]} but the file is ${same ? "a copy" : "masked"}`,
    );
    masked += groups[i]!;
  }
  assert.match(r.stdout, new RegExp(`${masked} of 36 images masked`));
  assert.ok(masked > 5 && masked < 31, `about half masked, got ${masked}`);

  // An output folder that already held other images gives no groups: they would not line up.
  fs.mkdirSync(path.join(dir, "other", "x"), { recursive: true });
  fs.copyFileSync(path.join(faces, "000000", "000.jpg"), path.join(dir, "other", "x", "stray.jpg"));
  const bad = mfrSync("mask", faces, path.join(dir, "other"), "--groups", path.join(dir, "g2.npy"));
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /stray\.jpg was not written by this run/);
  assert.ok(!fs.existsSync(path.join(dir, "g2.npy")));
});
