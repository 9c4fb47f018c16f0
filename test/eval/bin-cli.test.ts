// `mfr eval --bin FILE.bin --model CKPT` as users start it: arcface_torch's 10-fold accuracy of a
// checkpoint on a .bin set, the figures verifySet gives for the same backbone.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as T from "../../src/torch/index.ts";
import { buildBackbone, loadBackboneCheckpoint, saveBackboneCheckpoint } from "../../src/models/index.ts";
import { loadVerificationSet, verifySet } from "../../src/eval/index.ts";
import { mfr } from "../helpers/mfr.ts";
import { writeBinSet } from "../helpers/bin-set.ts";

test("mfr eval --bin --model prints the set's 10-fold accuracy, as verifySet computes it", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-evalbin-"));
  const bin = path.join(dir, "pairs.bin");
  const ckpt = path.join(dir, "model.safetensors");
  writeBinSet(bin, 20, 3);
  T.manualSeed(2);
  const model = buildBackbone("[1,1,1,1]", { width: 0.125, numFeatures: 16 });
  saveBackboneCheckpoint(ckpt, model);
  model.dispose();

  const json = await mfr(["eval", "--bin", bin, "--model", ckpt, "--json"]);
  assert.equal(json.code, 0, json.stderr);
  const lines = json.stdout.trim().split("\n");
  assert.equal(lines.length, 1, json.stdout);
  const got = (JSON.parse(lines[0]!) as { sets: Record<string, Record<string, number>> }).sets[bin]!;

  const loaded = loadBackboneCheckpoint(ckpt).model;
  loaded.eval();
  const want = await verifySet(loadVerificationSet(bin), (x, n) =>
    T.scope(() =>
      T.noGrad(() => loaded.forward(T.tensor(x, { shape: [n, 3, 112, 112] })).data() as Float32Array),
    ),
  );
  loaded.dispose();
  assert.equal(got.pairs, 20);
  assert.equal(got.accuracy, want.accuracy);
  assert.equal(got.std, want.std);
  assert.ok(Math.abs(got.xnorm! - want.xnorm) < 1e-6 * want.xnorm, `${got.xnorm} vs ${want.xnorm}`);

  const text = await mfr(["eval", "--bin", bin, "--model", ckpt]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(
    text.stdout,
    new RegExp(`pairs\\.bin: 20 pairs, accuracy ${(100 * want.accuracy).toFixed(2)}% ±`),
  );
});

test("mfr eval --bin without --model, or with --data, is refused by name", async () => {
  const noModel = await mfr(["eval", "--bin", "x.bin"]);
  assert.notEqual(noModel.code, 0);
  assert.match(noModel.stderr, /eval --bin needs --model/);
  const withData = await mfr(["eval", "--bin", "x.bin", "--model", "m.safetensors", "--data", "d"]);
  assert.notEqual(withData.code, 0);
  assert.match(withData.stderr, /eval --bin takes --model only, not --data/);
});
