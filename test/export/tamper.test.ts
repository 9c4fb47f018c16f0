// Checkpoints that were edited or are not checkpoints at all: export, embed and eval --model
// refuse them, naming the file (and the tensor), instead of loading converted weights.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { synthesizeDataset } from "../../src/data/index.ts";
import { mfrSync } from "../helpers/mfr.ts";
import { tinyBackbone, tinyCheckpoint, trainerCheckpoint } from "./helpers.ts";

let dir = "";
let faces = "";
before(async () => {
  dir = fs.mkdtempSync(path.join(tmpdir(), "mfr-tamper-"));
  faces = path.join(dir, "faces");
  await synthesizeDataset({ out: faces, identities: 2, imagesPerIdentity: 2, seed: 4 });
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Rewrites the first F32 tensor's dtype as I32 in the header (same length, same data size). */
function retypeFirstF32(file: string): string {
  const bytes = fs.readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = bytes.subarray(8, 8 + n).toString("utf8");
  const at = header.indexOf('"dtype":"F32"');
  assert.ok(at > 0);
  const name = /"([^"]+)":\{$/.exec(header.slice(0, at))![1]!;
  bytes.write('"dtype":"I32"', 8 + at, "utf8");
  fs.writeFileSync(file, bytes);
  return name;
}

/** The commands that read a checkpoint, each of which must refuse `model`. */
function everyReader(model: string): [string, ReturnType<typeof mfrSync>][] {
  return [
    ["export", mfrSync("export", "--model", model, "--out", path.join(dir, "x.onnx"))],
    ["embed", mfrSync("embed", "--model", model, "--data", faces, "--out", path.join(dir, "x.npy"))],
    ["eval", mfrSync("eval", "--model", model, "--data", faces, "--json")],
  ];
}

test("a trainer checkpoint whose header was edited fails its manifest checksum everywhere", () => {
  const step = path.join(dir, "run", "step-00000010");
  const file = trainerCheckpoint(step, tinyBackbone("r18", 3));
  retypeFirstF32(file);
  for (const [cmd, r] of everyReader(step)) {
    assert.notEqual(r.status, 0, `${cmd}: ${r.stdout}`);
    assert.match(r.stderr, new RegExp(`${file}: checksum mismatch with the checkpoint's manifest`), cmd);
  }
  assert.ok(!fs.existsSync(path.join(dir, "x.onnx")) && !fs.existsSync(path.join(dir, "x.npy")));
});

test("a stored dtype is never converted: an I32 tensor where the model has F32 is named", () => {
  const file = tinyCheckpoint("r18", dir, 3);
  const name = retypeFirstF32(file);
  for (const [cmd, r] of everyReader(file)) {
    assert.notEqual(r.status, 0, `${cmd}: ${r.stdout}`);
    assert.ok(r.stderr.includes(`${file}: `), `${cmd} names the file: ${r.stderr}`);
    assert.ok(r.stderr.includes(`'${name}' is stored as i32, the model's is f32`), `${cmd}: ${r.stderr}`);
  }
});

test("a corrupt manifest.json or a file that is no checkpoint is named as such", () => {
  const step = path.join(dir, "run2", "step-00000010");
  trainerCheckpoint(step, tinyBackbone("r18", 3));
  fs.writeFileSync(path.join(step, "manifest.json"), '{"files": {');
  const notes = path.join(dir, "notes.txt");
  fs.writeFileSync(notes, "not a model\n");
  for (const [model, want] of [
    [step, `${path.join(step, "manifest.json")}: not valid JSON`],
    [notes, `${notes}: not a model checkpoint`],
  ] as const)
    for (const [cmd, r] of everyReader(model)) {
      assert.notEqual(r.status, 0, `${cmd}: ${r.stdout}`);
      assert.ok(r.stderr.includes(want), `${cmd}: ${r.stderr}`);
    }
});
