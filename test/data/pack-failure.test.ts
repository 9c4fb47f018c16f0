// A `mfr pack` that fails part-way (an image it cannot read) leaves no temporary files behind,
// and no train.rec that looks whole.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { synthesizeDataset } from "../../src/data/index.ts";
import { mfrSync } from "../helpers/mfr.ts";

test("a failed mfr pack names the image and removes its temporary files", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-pack-fail-"));
  const faces = path.join(dir, "faces");
  await synthesizeDataset({ out: faces, identities: 2, imagesPerIdentity: 2, seed: 6 });
  const gone = path.join(faces, "000001", "zz.jpg");
  fs.symlinkSync(path.join(dir, "deleted.jpg"), gone);
  const out = path.join(dir, "packed");
  const r = mfrSync("pack", faces, out);
  assert.notEqual(r.status, 0);
  assert.ok(r.stderr.includes(gone), r.stderr);
  assert.deepEqual(fs.existsSync(out) ? fs.readdirSync(out) : [], []);
});
