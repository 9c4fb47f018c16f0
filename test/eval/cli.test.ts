import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import * as T from "../../src/torch/index.ts";
import { evaluatePairs } from "../../src/eval/index.ts";

const run = promisify(execFile);
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "../..");
const mfr = (args: string[]) =>
  run(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], { cwd: root });

function fixture() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-eval-"));
  T.manualSeed(3);
  const n = 120;
  const labels = Int32Array.from({ length: n }, (_, i) => i % 15);
  const groups = Uint8Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 1 : 0));
  const centres = T.randn([15, 16]);
  const emb = centres.indexSelect(0, T.tensor(labels).to("i64")).add(T.randn([n, 16]));
  T.saveNpy(path.join(dir, "e.npy"), emb.to("f16"));
  T.saveNpy(path.join(dir, "l.npy"), T.tensor(labels).to("i64"));
  T.saveNpy(path.join(dir, "g.npy"), T.tensor(groups));
  return { dir, emb, labels: Array.from(labels), groups: Array.from(groups) };
}

test("mfr eval --json prints exactly one object of the documented shape", async () => {
  const f = fixture();
  const p = (x: string) => path.join(f.dir, x);
  const { stdout } = await mfr([
    "eval",
    ...["--embeddings", p("e.npy"), "--labels", p("l.npy"), "--groups", p("g.npy")],
    ...["--fpr", "1e-2,1,0.1", "--json", "--report", p("report")],
  ]);
  const lines = stdout.trim().split("\n");
  assert.equal(lines.length, 1);
  const out = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.deepEqual(Object.keys(out), ["pairs", "subsets"]);
  // FPR keys exactly as typed, in the order typed (even the integer-like "1").
  assert.match(lines[0]!, /"tpr":\{"1e-2":[^,]+,"1":[^,]+,"0\.1":/);
  const want = await evaluatePairs(
    { embeddings: f.emb.to("f16"), labels: f.labels, groups: f.groups },
    { fpr: ["1e-2", "1", "0.1"] },
  );
  assert.deepEqual(out, { pairs: want.pairs, subsets: want.subsets });
  assert.deepEqual(Object.keys(out.subsets as object), [
    "all",
    "masked-unmasked",
    "masked-masked",
    "unmasked-unmasked",
  ]);
  for (const file of ["result.json", "roc.svg", "roc.png", "det.svg", "det.png", "report.html"])
    assert.ok(fs.statSync(p(`report/${file}`)).size > 0, file);
  assert.match(fs.readFileSync(p("report/roc.svg"), "utf8"), /^<svg/);
  const png = fs.readFileSync(p("report/roc.png"));
  assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]);

  const { stdout: plain } = await mfr(["eval", "--embeddings", p("e.npy"), "--labels", p("l.npy"), "--json"]);
  assert.deepEqual(Object.keys((JSON.parse(plain) as { subsets: object }).subsets), ["all"]);

  // Two ranks under mfr launch: the same object, printed once.
  const { stdout: launched } = await mfr([
    ...["launch", "--nproc-per-node", "2", "--", "eval"],
    ...["--embeddings", p("e.npy"), "--labels", p("l.npy"), "--groups", p("g.npy")],
    ...["--fpr", "1e-2,1,0.1", "--json", "--block-size", "32"],
  ]);
  assert.equal(launched.trim().split("\n").length, 1);
  assert.deepEqual(JSON.parse(launched), out);
});

test("mfr eval: bad files are named", async () => {
  await assert.rejects(mfr(["eval", "--model", "x.onnx", "--data", "d"]), /x\.onnx: no such model file/);
  const f = fixture();
  await assert.rejects(
    mfr(["eval", "--embeddings", path.join(f.dir, "l.npy"), "--labels", path.join(f.dir, "l.npy")]),
    /l\.npy: embeddings must be \[N, D\]/,
  );
});
