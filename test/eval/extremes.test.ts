// `mfr eval` on inputs at the edges of its number types: int64 identities past 2^53, rows whose
// squared norm overflows or underflows float32 (or float64), and an empty set.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as T from "../../src/torch/index.ts";
import { mfrSync } from "../helpers/mfr.ts";
import { assertClose } from "../helpers/numeric.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-eval-extremes-"));
const p = (f: string): string => path.join(dir, f);

interface Result {
  pairs: { genuine: number; impostor: number };
  subsets: { all: { tpr: Record<string, number>; threshold: Record<string, number> } };
}

function evalJson(embeddings: string, labels: string): Result {
  const r = mfrSync("eval", "--embeddings", embeddings, "--labels", labels, "--fpr", "0.01,0.1", "--json");
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Result;
}

// 60 rows of 6 identities around random centres (seeded).
T.manualSeed(11);
const n = 60;
const ids = Array.from({ length: n }, (_, i) => i % 6);
const emb = T.randn([6, 16])
  .indexSelect(0, T.tensor(Int32Array.from(ids)).to("i64"))
  .add(T.randn([n, 16]).mul(0.8));
T.saveNpy(p("e.npy"), emb);
T.saveNpy(p("l.npy"), T.tensor(BigInt64Array.from(ids, BigInt)));
const reference = evalJson(p("e.npy"), p("l.npy"));

test("int64 identities past 2^53 stay apart (2^53 and 2^53 + 1 are two people)", () => {
  T.saveNpy(p("big.npy"), T.tensor(BigInt64Array.from(ids, (i) => 2n ** 53n + BigInt(i))));
  assert.deepEqual(evalJson(p("e.npy"), p("big.npy")), reference);
});

for (const [name, scaled] of [
  ["float32 rows scaled by 1e25 (squares overflow)", () => emb.mul(1e25)],
  ["float32 rows scaled by 1e-25 (squares underflow)", () => emb.mul(1e-25)],
  ["float64 rows scaled by 1e200 (past float32's range)", () => emb.to("f64").mul(1e200)],
] as const)
  test(`cosine scores do not depend on scale: ${name}`, () => {
    const file = p(`${name.split(" ")[4]}.npy`);
    T.scope(() => T.saveNpy(file, scaled()));
    const got = evalJson(file, p("l.npy"));
    assert.deepEqual(got.pairs, reference.pairs);
    assert.deepEqual(got.subsets.all.tpr, reference.subsets.all.tpr);
    const keys = Object.keys(reference.subsets.all.threshold);
    assertClose(
      keys.map((k) => got.subsets.all.threshold[k]!),
      keys.map((k) => reference.subsets.all.threshold[k]!),
      1e-5,
      "thresholds",
    );
  });

test("an empty set is an error naming the file", () => {
  T.saveNpy(p("e0.npy"), T.zeros([0, 16]));
  T.saveNpy(p("l0.npy"), T.zeros([0], { dtype: "i64" }));
  const r = mfrSync("eval", "--embeddings", p("e0.npy"), "--labels", p("l0.npy"), "--json");
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, new RegExp(`${p("e0.npy")}: embeddings are \\[0, 16\\]: nothing to evaluate`));
});
