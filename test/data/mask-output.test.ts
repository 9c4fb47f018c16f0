// `mfr mask IN OUT` never writes over its input: an output that is the input, lies inside it, or
// reaches it through a symbolic link is refused before any image is touched.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { synthesizeDataset } from "../../src/data/index.ts";
import { mfrSync } from "../helpers/mfr.ts";

test("mfr mask refuses an output that is, or is inside, the input", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-mask-out-"));
  const faces = path.join(dir, "faces");
  await synthesizeDataset({ out: faces, identities: 1, imagesPerIdentity: 2, seed: 5 });
  const image = path.join(faces, "000000", "000.jpg");
  const original = fs.readFileSync(image);
  const link = path.join(dir, "link");
  fs.symlinkSync(faces, link);
  for (const [input, output] of [
    [faces, faces],
    [faces, `${faces}/`],
    [faces, path.join(faces, "masked")],
    [faces, link],
    [link, path.join(faces, "000000")],
    [image, image],
    [image, path.join(link, "000000", "000.jpg")],
  ]) {
    const r = mfrSync("mask", input!, output!);
    assert.notEqual(r.status, 0, `mask ${input} ${output}: ${r.stdout}`);
    assert.match(r.stderr, /output .* (is|is inside) the input/, `mask ${input} ${output}`);
  }
  assert.deepEqual(fs.readFileSync(image), original, "the input image is untouched");
  assert.deepEqual(fs.readdirSync(faces), ["000000"]);
  assert.deepEqual(fs.readdirSync(path.join(faces, "000000")).sort(), ["000.jpg", "001.jpg"]);
  // A sibling folder whose name starts like the input's is not inside it.
  const r = mfrSync("mask", faces, `${faces}-masked`);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /2 of 2 images masked/);
  assert.notDeepEqual(fs.readFileSync(path.join(`${faces}-masked`, "000000", "000.jpg")), original);
});
